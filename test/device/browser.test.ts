/**
 * A real browser approves a device (RFC 8628 §3.3) through the real pages: headless Chromium
 * (the Debian package, driven by playwright-core) opens verification_uri_complete, submits
 * the prefilled code, signs in, reads the confirmation page and clicks Allow, with no CSP
 * violation on the way (form-action covers each post and its redirect). The device polls.
 */
import t from 'tap'
import { existsSync } from 'node:fs'
import { CHROMIUM, openPage } from '../helpers/chromium.js'
import { postForm } from '../helpers/server.js'
import { deviceConfig, DEVICE_GRANT, startDeviceServer } from './flow.js'


if (!existsSync(CHROMIUM)) {
  const message = `NO CHROMIUM at ${CHROMIUM}: apt-get install -y chromium`
  if (process.env.CI === 'true') throw new Error(message)
  process.stderr.write(`\n!!!!! ${message} — the device browser test is SKIPPED !!!!!\n\n`)
  t.pass('skipped: no chromium')
} else {
  t.test('headless Chromium approves a device', async (t) => {
    const srv = await startDeviceServer(deviceConfig({ device: { interval: 1 } }))
    t.teardown(() => srv.close())
    const started = await postForm(`${srv.url}/connect/deviceauthorization`, { client_id: 'tv', scope: 'openid profile' })
    const d = started.json as Record<string, string>

    const { page, cspViolations } = await openPage(t, 'grantd-chromium-device-')

    await page.goto(d.verification_uri_complete!)
    t.equal(await page.inputValue('#user_code'), d.user_code, 'verification_uri_complete fills the code in')
    await Promise.all([page.waitForURL(/\/connect\/device\?ticket=/), page.click('button[type=submit]')])
    await page.fill('#username', 'alice')
    await page.fill('#password', 'wonderland')
    await Promise.all([page.waitForSelector('#user-code'), page.click('button[type=submit]')])
    t.equal(await page.textContent('#user-code'), d.user_code, 'the confirmation page shows the code')
    t.equal(await page.textContent('#client-name'), 'Living Room TV', 'and names the client')
    await Promise.all([page.waitForSelector('#outcome'), page.click('button[value=allow]')])
    t.equal(await page.getAttribute('#outcome', 'data-outcome'), 'approved')
    t.same(cspViolations, [], 'no CSP violation')

    const tokens = await postForm(`${srv.url}/connect/token`, { grant_type: DEVICE_GRANT, device_code: d.device_code!, client_id: 'tv' })
    t.equal(tokens.status, 200, 'the device gets its tokens')
    t.ok(tokens.json.id_token)
  })
}
