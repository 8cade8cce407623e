/**
 * SPEC §13 "No log line holds a secret": the start-up curl hint of `grantd start` shows the
 * client secret only for the quickstart config (examples/quickstart.json); any other config
 * gets `<client_secret>`, even a byte-for-byte copy of the quickstart elsewhere.
 */
import t from 'tap'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, startCli } from '../helpers/server.js'

const HINT = /try: curl -s -u (\S+):(\S+) -d grant_type=client_credentials -d scope=(\S+) (\S+)\n/
const QUICKSTART = join(ROOT, 'examples', 'quickstart.json')

async function tokenStatus(url: string, id: string, secret: string, scope: string): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&scope=${scope}`,
  })
  return res.status
}

t.test('the quickstart: the hint carries its demo secret and works as printed', async (t) => {
  const child = await startCli(QUICKSTART)
  t.teardown(() => child.stop('SIGKILL'))
  const hint = HINT.exec(child.output())
  t.ok(hint, child.output())
  t.equal(hint?.[1], 'svc')
  t.equal(hint?.[2], 'svc-secret')
  t.equal(await tokenStatus(hint![4]!, hint![1]!, hint![2]!, hint![3]!), 200)
  t.equal(await child.stop(), 0)
})

t.test('any other config (here a copy of the quickstart): <client_secret>, and no line holds the secret', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'grantd-hint-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'prod.json')
  copyFileSync(QUICKSTART, file)
  const child = await startCli(file)
  t.teardown(() => child.stop('SIGKILL'))
  const hint = HINT.exec(child.output())
  t.ok(hint, child.output())
  t.equal(hint?.[2], '<client_secret>')
  t.equal(await tokenStatus(hint![4]!, hint![1]!, 'svc-secret', hint![3]!), 200, 'the hint works once the secret is filled in')
  t.equal(await child.stop(), 0)
  for (const secret of ['svc-secret', 'web-secret', 'ro-secret', 'wonderland']) t.notOk(child.output().includes(secret), `no line holds ${secret}`)
})
