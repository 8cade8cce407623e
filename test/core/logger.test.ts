import t from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { createLogger } from '../../core/src/ops/logger.js'

/** A sink that keeps every written line, with the timestamp removed so two loggers compare. */
function sink(): { stream: Writable; lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk).replace(/"time":"[^"]+",/, '')); done() } })
  return { stream, lines }
}

const SECRET_PATHS = ['password', 'client_secret', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'code', 'authorization', '*.password', '*.client_secret', '*.token', '*.authorization', '*.code']

t.test('credentials are redacted at the top level and one level down; request lines pass unchanged', async (t) => {
  const out = sink()
  const log = createLogger('debug', out.stream)
  log.info({ method: 'POST', path: '/connect/token', status: 200, ms: 1.5, ip: '127.0.0.1', client_id: 'svc' }, 'request')
  log.warn({ client_secret: 's3cret', password: 'pw', access_token: 'at', id: 7 }, 'top')
  log.error({ err: { message: 'boom', code: 'c0de', stack: 'S' }, body: { password: 'pw', token: 'tk', keep: 1 } }, 'nested')
  await new Promise((resolve) => setImmediate(resolve))
  const [request, top, nested] = out.lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  t.match(request, { level: 30, name: 'grantd', method: 'POST', path: '/connect/token', status: 200, ms: 1.5, ip: '127.0.0.1', client_id: 'svc', msg: 'request' })
  t.match(top, { client_secret: '[redacted]', password: '[redacted]', access_token: '[redacted]', id: 7 })
  t.match(nested!.err, { message: 'boom', code: '[redacted]', stack: 'S' })
  t.same(nested!.body, { password: '[redacted]', token: '[redacted]', keep: 1 })
  t.notOk(out.lines.join('\n').match(/s3cret|"pw"|"at"|c0de|"tk"/), 'no secret value reaches the output')
})

t.test('lines are byte-identical to one pino logger with every redaction path', async (t) => {
  const ours = sink()
  const reference = sink()
  const log = createLogger('debug', ours.stream)
  const ref = pino({ level: 'debug', base: { name: 'grantd' }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: SECRET_PATHS, censor: '[redacted]' } }, reference.stream)
  const samples: Record<string, unknown>[] = [
    { method: 'GET', path: '/healthz', status: 200, ms: 0.1, ip: '::1' },
    { code: 'abc', token: undefined, n: Number.NaN, b: false, s: 'quote " backslash \\ newline \n é' },
    { err: Object.assign(new Error('e'), { code: 'ECONNREFUSED' }), path: '/readyz' },
    { list: [1, { password: 'x' }], authorization: 'Basic abc', nothing: null },
    {},
  ]
  for (const obj of samples) {
    log.info(obj, 'm')
    ref.info(obj, 'm')
    log.debug(obj)
    ref.debug(obj)
  }
  await new Promise((resolve) => setImmediate(resolve))
  t.same(ours.lines, reference.lines)
  t.equal(ours.lines.length, samples.length * 2)
})

t.test('a disabled level writes nothing', async (t) => {
  const out = sink()
  const log = createLogger('warn', out.stream)
  log.info({ a: 1 }, 'hidden')
  log.debug({ err: { message: 'x' } }, 'hidden')
  log.warn({ a: 1 }, 'shown')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(out.lines.length, 1)
  t.match(JSON.parse(out.lines[0]!), { level: 40, msg: 'shown' })
})
