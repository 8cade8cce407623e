import t from 'tap'
import { isNonPublicAddress, nonPublicTarget } from '@grantd/core'

/** Pure logic: which addresses a registered client's back-channel URI may not reach (SSRF). */
t.test('non-public addresses', async (t) => {
  for (const ip of ['127.0.0.1', '127.255.0.9', '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::5', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::a9fe:a9fe', 'not-an-ip']) {
    t.ok(isNonPublicAddress(ip), `${ip} is refused`)
  }
  for (const ip of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '203.0.114.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
    t.notOk(isNonPublicAddress(ip), `${ip} is public`)
  }
})

t.test('URIs', async (t) => {
  t.match(await nonPublicTarget('http://LOCALHOST./x'), /loopback name/)
  t.match(await nonPublicTarget('http://[::1]:8080/x'), /not a public address/)
  t.match(await nonPublicTarget('http://2130706433/x'), /not a public address/, 'the decimal form of 127.0.0.1')
  t.equal(await nonPublicTarget('https://8.8.8.8/x'), undefined)
  t.equal(await nonPublicTarget('https://rp.example/x', { resolve: false }), undefined)
  t.match(await nonPublicTarget('not a url'), /not an absolute URL/)
})
