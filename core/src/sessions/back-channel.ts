import type { Client, Logger, Session } from '../interfaces.js'

/** Signs a Back-Channel Logout 1.0 §2.4 logout token for one client. */
export type LogoutTokenSigner = (input: { issuer: string; client: Client; sub: string; sid: string }) => Promise<string>

export interface BackChannelOptions {
  /** Per attempt; the browser never waits longer than this (SPEC §10). */
  timeoutMs: number
  /** Attempts after the first one, spaced `retryDelayMs`, doubling. */
  retries: number
  retryDelayMs: number
}

export const BACKCHANNEL_DEFAULTS: BackChannelOptions = { timeoutMs: 5000, retries: 2, retryDelayMs: 1000 }

/**
 * Back-Channel Logout 1.0 §2.5: POST `logout_token=<JWT>` to every client of an ended
 * session that registered a `backchannel_logout_uri`. Each POST is bounded by the timeout;
 * failures (a non-2xx answer, a timeout, a refused connection) are logged and retried a
 * bounded number of times in the background. Callers wait for first attempts only.
 */
export class BackChannelLogout {
  private readonly inFlight = new Set<Promise<void>>()
  private readonly stop = new AbortController()

  constructor(
    private readonly sign: LogoutTokenSigner, private readonly log: Logger, private readonly options: BackChannelOptions = BACKCHANNEL_DEFAULTS,
    /** Why a client's URI may not be called (SSRF filtering of run-time clients, SPEC §10), or undefined. */
    private readonly refuseTarget?: (client: Client, uri: string) => Promise<string | undefined>,
  ) {}

  /** Resolves when every first attempt answered or timed out. */
  notify(session: Session, clients: readonly Client[]): Promise<void> {
    const firsts: Promise<void>[] = []
    for (const client of clients) {
      if (!client.backchannel_logout_uri) continue
      let first!: () => void
      firsts.push(new Promise<void>((r) => { first = r }))
      const task = this.deliver(session, client, client.backchannel_logout_uri, first).finally(() => this.inFlight.delete(task))
      this.inFlight.add(task)
    }
    return Promise.all(firsts).then(() => undefined)
  }

  private async deliver(session: Session, client: Client, uri: string, firstDone: () => void): Promise<void> {
    const refused = await this.refuseTarget?.(client, uri).catch((err: unknown) => `target check failed: ${(err as Error).message}`)
    if (refused) {
      firstDone()
      this.log.error({ client_id: client.client_id, reason: refused }, 'back-channel logout not sent: the target is not a public address')
      return
    }
    let token: string
    try {
      token = await this.sign({ issuer: session.iss, client, sub: session.sub, sid: session.sid })
    } catch (err) {
      firstDone()
      this.log.error({ client_id: client.client_id, err: (err as Error).message }, 'back-channel logout: could not sign the logout token')
      return
    }
    for (let attempt = 0; attempt <= this.options.retries; attempt++) {
      if (attempt > 0) {
        await sleep(this.options.retryDelayMs * 2 ** (attempt - 1), this.stop.signal)
        if (this.stop.signal.aborted) return
      }
      const outcome = await this.post(uri, token)
      if (attempt === 0) firstDone()
      if (outcome === 'ok') {
        this.log.info({ event: 'logout.backchannel_sent', client_id: client.client_id, attempt: attempt + 1 }, 'back-channel logout delivered')
        return
      }
      const last = attempt === this.options.retries || this.stop.signal.aborted
      const fields = { client_id: client.client_id, attempt: attempt + 1, reason: outcome }
      if (last) {
        this.log.error(fields, 'back-channel logout failed: giving up')
        return
      }
      this.log.warn(fields, 'back-channel logout failed: will retry')
    }
  }

  private async post(uri: string, token: string): Promise<string> {
    try {
      const res = await fetch(uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ logout_token: token }).toString(),
        // §2.5: the RP answers 200 (or 204); a redirect is not an answer.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.stop.signal]),
      })
      await res.body?.cancel().catch(() => undefined)
      return res.status >= 200 && res.status < 300 ? 'ok' : `HTTP ${res.status}`
    } catch (err) {
      const e = err as Error
      return e.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : e.name === 'AbortError' ? 'aborted at shutdown' : (e.cause as Error | undefined)?.message ?? e.message
    }
  }

  /** Wait (at most `ms`) for deliveries still retrying, then abort what is left. */
  async drain(ms: number): Promise<void> {
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([Promise.all(this.inFlight), new Promise((r) => { timer = setTimeout(r, ms) })])
      clearTimeout(timer)
    }
    this.stop.abort()
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}
