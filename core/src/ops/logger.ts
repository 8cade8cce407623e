import { pino, type DestinationStream, type LoggerOptions } from 'pino'
import type { Logger } from '../interfaces.js'

const CENSOR = '[redacted]'
/** Buffered stdout: lines are written in batches of this size… */
const LOG_BUFFER_BYTES = 4096
/** …or after this long, whichever comes first. */
const FLUSH_MS = 100
/** Keys that could carry a credential, wherever they sit at the top of a log object. */
const TOP_LEVEL = ['password', 'client_secret', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'code', 'authorization']
/** The same, one level down (`{ err: { code } }`, `{ body: { password } }`). */
const NESTED = ['*.password', '*.client_secret', '*.token', '*.authorization', '*.code']

const SENSITIVE = new Set(TOP_LEVEL)

/** Which redaction a line needs: `full` for a nested value, `top` for a credential-named key, else none. */
function redactionFor(obj: object): 'full' | 'top' | 'none' {
  let top = false
  for (const key in obj) {
    const value = (obj as Record<string, unknown>)[key]
    if (typeof value === 'object' && value !== null) return 'full'
    if (SENSITIVE.has(key)) top = true
  }
  return top ? 'top' : 'none'
}

/**
 * JSON logs (one line per request). Anything that could carry a credential is redacted
 * by key name as a second line of defence; the request logger never logs bodies, query
 * strings or authorization headers in the first place.
 *
 * pino runs a wildcard redaction path (`*.password`) over every value of every line, even
 * a number: 9 µs to format a request line instead of 3.5 (bench/components.ts). A line
 * whose values are all primitives has nothing a nested path could match, so it goes
 * through a twin logger that redacts the top-level keys only; both write to one stream,
 * so lines keep their order and their bytes (test/core/logger.test.ts). A flat line with no
 * credential-named key at all (every request line and audit line: their keys are fixed
 * names) has nothing to redact, and goes through a third twin without redaction: the
 * redaction wrapper was a third of a request line's cost (bench/results, session 3).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { name: 'grantd' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }
  // stdout: per-request lines gather in a 4 KiB buffer and go out in one write when it
  // fills, within FLUSH_MS otherwise; any other line, warning or error at once. One
  // asynchronous write per line cost a thread-pool round trip each (≈ 8 µs of a request's
  // CPU at `info`); pino flushes what is left when the process exits.
  const boom = destination ? undefined : pino.destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES })
  const stream = (destination ?? boom) as DestinationStream
  let pending = false
  if (boom) setInterval(() => { if (pending) { pending = false; boom.flush() } }, FLUSH_MS).unref()
  const full = pino({ ...options, redact: { paths: [...TOP_LEVEL, ...NESTED], censor: CENSOR } }, stream)
  const flat = pino({ ...options, redact: { paths: TOP_LEVEL, censor: CENSOR } }, stream)
  const bare = pino(options, stream)
  const loggers = { full, top: flat, none: bare }
  const method = (name: 'info' | 'warn' | 'error' | 'debug'): Logger['info'] => {
    // The level is fixed for the logger's life: a disabled level costs one empty call.
    if (!full.isLevelEnabled(name)) return () => {}
    if (!boom) return (obj, msg) => loggers[redactionFor(obj)][name](obj, msg)
    const urgent = name === 'warn' || name === 'error'
    return (obj, msg) => {
      loggers[redactionFor(obj)][name](obj, msg)
      // The timer also catches a line whose flush found a write under way.
      pending = true
      // Per-request lines (the request line, audit events) wait for the batch; start-up, reload and
      // shutdown lines, warnings and errors go out at once (operators and supervisors wait for them).
      if (urgent || (msg !== 'request' && !('event' in obj))) boom.flush()
    }
  }
  return { info: method('info'), warn: method('warn'), error: method('error'), debug: method('debug') }
}
