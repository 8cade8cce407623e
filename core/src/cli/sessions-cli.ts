import { parseArgs } from 'node:util'
import { createServer } from '../app.js'
import type { ServerConfig } from '../config.js'
import type { Logger } from '../interfaces.js'

/** Log lines go to stderr as JSON (the audit events `session.ended`, `consent.revoked`); stdout gets the summary. */
const stderrLogger: Logger = {
  info: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'info', ...obj, msg })}\n`),
  warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'warn', ...obj, msg })}\n`),
  error: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'error', ...obj, msg })}\n`),
  debug: () => undefined,
}

/** The memory store lives inside each process: the CLI's own copy is empty and reaches nobody. */
function warnIfLocal(config: ServerConfig): void {
  if (config.store.use === '@grantd/store-memory') process.stderr.write('grantd: warning: the config uses @grantd/store-memory; a running server keeps its sessions in its own memory, which this command cannot reach\n')
}

type ReadConfig = (file: string | undefined) => Promise<ServerConfig>

/**
 * `grantd sessions end --sub SUB [--client ID]` and `grantd consent revoke --sub SUB --client ID`
 * (SPEC §10). They load the config and act through the configured store, so a running grantd
 * sharing it (Redis) sees the result at once; back-channel logouts go out from here.
 */
export async function sessionsCommand(args: string[], readConfig: ReadConfig, die: (message: string, code?: number) => never): Promise<void> {
  const [sub, ...rest] = args
  if (sub !== 'end') die(`unknown sessions command "${sub ?? ''}" (expected: grantd sessions end --sub SUB [--client ID] --config FILE)`, 2)
  const { values } = parseArgs({ args: rest, options: { sub: { type: 'string' }, client: { type: 'string' }, config: { type: 'string' } } })
  if (!values.sub) die('sessions end: --sub SUB is required', 2)
  const config = await readConfig(values.config)
  warnIfLocal(config)
  const server = await createServer(config, { log: stderrLogger })
  try {
    // Config clients and registered ones (RFC 7591) alike.
    if (values.client !== undefined && !(await server.registry.resolve('clients').find(values.client))) die(`sessions end: no client "${values.client}" in the config or the store`)
    const sessions = server.registry.resolve('sessions')
    let ended = 0
    const notified: Promise<void>[] = []
    for (const session of await sessions.listBySubject(values.sub)) {
      if (values.client !== undefined && !(await sessions.clientsOf(session.sid)).includes(values.client)) continue
      const done = await sessions.end(session.sid)
      if (done) {
        ended++
        notified.push(done.notified)
      }
    }
    await Promise.all(notified)
    process.stdout.write(`ended ${ended} session${ended === 1 ? '' : 's'} of ${values.sub}\n`)
  } finally {
    // Retries of failed back-channel deliveries get their full schedule here.
    await server.close({ notificationsMs: 15_000 })
  }
}

export async function consentCommand(args: string[], readConfig: ReadConfig, die: (message: string, code?: number) => never): Promise<void> {
  const [sub, ...rest] = args
  if (sub !== 'revoke') die(`unknown consent command "${sub ?? ''}" (expected: grantd consent revoke --sub SUB --client ID --config FILE)`, 2)
  const { values } = parseArgs({ args: rest, options: { sub: { type: 'string' }, client: { type: 'string' }, config: { type: 'string' } } })
  if (!values.sub) die('consent revoke: --sub SUB is required', 2)
  if (!values.client) die('consent revoke: --client ID is required', 2)
  const config = await readConfig(values.config)
  warnIfLocal(config)
  const server = await createServer(config, { log: stderrLogger })
  try {
    if (!(await server.registry.resolve('clients').find(values.client))) die(`consent revoke: no client "${values.client}" in the config or the store`)
    await server.registry.resolve('consent').revoke(values.sub, values.client)
    process.stdout.write(`revoked consent of ${values.sub} for ${values.client}\n`)
  } finally {
    await server.close()
  }
}
