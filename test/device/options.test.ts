/** The plugin's options: defaults, bounds, and a start error that names the key. */
import t from 'tap'
import { parseDeviceCodeOptions } from '@grantd/grant-device-code'
import { deviceConfig, startDeviceServer } from './flow.js'

t.test('defaults and bounds', async (t) => {
  t.same(parseDeviceCodeOptions(undefined), { expiresIn: 600, interval: 5, maxUserCodeFailures: 10, sessionTtl: 28800, maxPendingPerAddress: 100 })
  t.equal(parseDeviceCodeOptions({ expiresIn: 30, interval: 2 }).interval, 2)
  t.throws(() => parseDeviceCodeOptions({ interval: 0 }), /interval: must be between 1 and 60/)
  t.throws(() => parseDeviceCodeOptions({ expiresIn: 1.5 }), /expiresIn: expected integer/)
  t.throws(() => parseDeviceCodeOptions({ expiresIn: '600' }), /expiresIn: expected integer/)
  t.throws(() => parseDeviceCodeOptions({ intervall: 5 }), /intervall: unknown key/)
  t.throws(() => parseDeviceCodeOptions([]), /expected object/)
})

t.test('a bad option stops the server with an error naming it', async (t) => {
  await t.rejects(startDeviceServer(deviceConfig({ device: { interval: 'fast' } })), /interval: expected integer/)
})
