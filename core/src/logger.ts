import { pino, type Logger as Pino } from 'pino'
import type { Logger } from './interfaces.js'

/**
 * JSON logs (one line per request). Anything that could carry a credential is redacted
 * by key name as a second line of defence; the request logger never logs bodies, query
 * strings or authorization headers in the first place.
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Pino & Logger {
  const options = {
    level,
    base: { name: 'grantd' },
    redact: {
      paths: ['password', 'client_secret', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'code', 'authorization', '*.password', '*.client_secret', '*.token', '*.authorization', '*.code'],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  }
  return (destination ? pino(options, destination as pino.DestinationStream) : pino(options, pino.destination({ dest: 1, sync: false }))) as Pino & Logger
}
