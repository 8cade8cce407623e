/**
 * The running server's handle (createServer in app.ts): listen (the public port, and the
 * metrics port), close (drain, notifications, plugins, store) and reload (SIGHUP).
 */
import { createServer as createHttpServer, STATUS_CODES, type Server } from 'node:http'
import cluster from 'node:cluster'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import type Koa from 'koa'
import type { CreateServerOptions, GrantdServer } from '../app.js'
import type { ServerConfig } from '../config.js'
import type { Logger, RequestState } from '../interfaces.js'
import type { ClientRegistry } from '../clients/clients.js'
import type { Discovery } from '../endpoints/discovery.js'
import type { PluginRegistry } from '../host/plugin-loader.js'
import { prepareReload } from '../host/reload.js'
import { browserOrigins } from '../http/cors.js'
import { Drain } from '../http/drain.js'
import { type Metrics, serveMetrics } from '../ops/metrics.js'
import type { BackChannelLogout } from '../sessions/back-channel.js'
import { checkClientAlgs, type KeySet, missingRs256Warning } from '../tokens/keys.js'
import type { StoreKeySource } from '../tokens/key-store.js'
import type { TokenService } from '../tokens/tokens.js'
import { releasePlugins } from './boot.js'

/** The config in use: createServer's, then each reload's. */
export interface LiveConfig {
  config: ServerConfig
}

export interface LifecycleDeps {
  readonly app: Koa<RequestState>
  readonly registry: PluginRegistry
  readonly log: Logger
  readonly live: LiveConfig
  readonly options: CreateServerOptions
  readonly clients: ClientRegistry
  readonly configOrigins: Set<string>
  readonly discovery: Discovery
  readonly tokens: TokenService
  readonly useKeys: (next: KeySet) => void
  readonly keySource: StoreKeySource | undefined
  readonly metrics: Metrics | undefined
  readonly backChannel: BackChannelLogout
}

/** The GrantdServer createServer returns. */
export function serverHandle(config: ServerConfig, deps: LifecycleDeps): GrantdServer {
  const { app, registry, log, live, options, clients, configOrigins, discovery, tokens, useKeys, keySource, metrics, backChannel } = deps
  let drain: Drain | undefined
  let metricsServer: Server | undefined
  let closing: Promise<void> | undefined
  let reloading: Promise<{ restartNeeded: string[] }> | undefined

  return {
    app,
    registry,
    get config() { return live.config },
    get keys() { return tokens.keys },
    log,
    reload(next) {
      // One reload at a time: a second SIGHUP waits for the first.
      const run = async () => {
        const prepared = await prepareReload(live.config, next, {
          registry,
          keys: config.keys && !options.keys ? 'file' : keySource ? 'store' : 'fixed',
          running: tokens.keys,
        })
        const nextKeys = keySource ? ((await keySource.refresh()) ?? tokens.keys) : prepared.keys
        if (nextKeys !== tokens.keys) {
          const noRs256 = missingRs256Warning(nextKeys)
          if (noRs256) log.warn({ algs: nextKeys.algs }, noRs256)
        }
        checkClientAlgs(next.clients, nextKeys)
        // Commit: synchronous from here, so no request sees half of it.
        clients.adopt(prepared.clients)
        configOrigins.clear()
        for (const o of browserOrigins(clients.clients.values())) configOrigins.add(o)
        if (nextKeys !== tokens.keys) useKeys(nextKeys)
        discovery.clear()
        for (const commit of prepared.commits) commit()
        live.config = prepared.config
        return { restartNeeded: prepared.restartNeeded }
      }
      const result = (reloading ?? Promise.resolve()).catch(() => undefined).then(run)
      reloading = result
      return result
    },
    listen(port = config.port, host = config.host) {
      return new Promise((resolve, reject) => {
        const s = createHttpServer({ requestTimeout: 30_000, headersTimeout: 15_000, maxHeaderSize: 16 * 1024 }, app.callback())
        s.keepAliveTimeout = 5_000
        s.on('clientError', answerUnparseable)
        s.once('error', reject)
        s.listen(port, host, () => {
          s.off('error', reject)
          drain = new Drain(s)
          const addr = s.address() as AddressInfo
          const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
          const bound = { port: addr.port, host: addr.address, url: `http://${shown}:${addr.port}` }
          // Its own listener, never the public port; with --workers the primary serves the sum (workers.ts).
          if (!metrics || !config.metrics || cluster.isWorker) return resolve(bound)
          const reg = metrics.registry
          serveMetrics(config.metrics.port, config.metrics.host, reg.contentType, () => reg.metrics(), log).then(
            (m) => { metricsServer = m.server; resolve(bound) },
            (err: unknown) => { s.close(); reject(err) },
          )
        })
      })
    },
    close({ timeoutMs = (config.shutdown?.timeoutSeconds ?? 10) * 1000, notificationsMs = 2000 } = {}) {
      closing ??= (async () => {
        const m = metricsServer
        if (m) await new Promise<void>((resolve) => { m.close(() => resolve()); m.closeAllConnections() })
        if (drain) await drain.close(timeoutMs, log)
        // Back-channel logouts still retrying get a moment, then are cut (and were logged).
        await backChannel.drain(notificationsMs)
        // Fastify-style: children before parents — plugins close in reverse, the store last.
        await releasePlugins(registry, log)
      })()
      return closing
    },
  }
}

/**
 * Requests Node's HTTP parser refuses (bad framing, control characters in a header,
 * oversize headers) never reach Koa; they still get an OAuth JSON error, not a bare status line.
 */
function answerUnparseable(err: NodeJS.ErrnoException, socket: Duplex): void {
  const response = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (err.code === 'ECONNRESET' || !socket.writable || response?.headersSent) {
    socket.destroy()
    return
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
  const body = JSON.stringify({ error: 'invalid_request', error_description: status === 431 ? 'request headers too large' : status === 408 ? 'request timeout' : 'malformed HTTP request' })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\nPragma: no-cache\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n${body}`)
}
