import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Logger } from '../interfaces.js'

interface InFlight {
  readonly method: string
  readonly path: string
  readonly started: number
}

/**
 * Graceful stop of one HTTP server (SPEC §2, §13): stop accepting, let in-flight
 * requests finish, close kept-alive connections as they go idle, and after
 * `timeoutMs` cut what is left, logging one warning per request cut.
 */
export class Drain {
  private readonly inFlight = new Map<ServerResponse, InFlight>()

  constructor(private readonly server: Server) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0]!
      this.inFlight.set(res, { method: req.method ?? '', path: path.length > 200 ? `${path.slice(0, 200)}…` : path, started: performance.now() })
      res.once('close', () => this.inFlight.delete(res))
    })
  }

  /** Resolves once every connection is gone; never takes much longer than `timeoutMs`. */
  async close(timeoutMs: number, log: Logger): Promise<void> {
    const s = this.server
    const drained = new Promise<void>((resolve) => s.close(() => resolve()))
    s.closeIdleConnections()
    // A kept-alive connection whose last response finishes during the drain would hold the
    // process until the client drops it: close each one as soon as it goes idle.
    const sweep = setInterval(() => s.closeIdleConnections(), 50)
    const timer = setTimeout(() => {
      for (const r of this.inFlight.values()) {
        log.warn({ method: r.method, path: r.path, ms: Math.round(performance.now() - r.started), timeoutSeconds: timeoutMs / 1000 },
          'shutdown timeout: request cut before it finished')
      }
      s.closeAllConnections()
    }, timeoutMs)
    await drained
    clearInterval(sweep)
    clearTimeout(timer)
  }
}
