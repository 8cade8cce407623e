import { timingSafeEqual } from 'node:crypto'
import type { Client, ClientDirectory, ConsentService, EndedSession, Logger, RouteContext, Session, SessionInit, SessionService, Store } from '../interfaces.js'
import { audit } from '../ops/audit.js'
import { secretKey } from '../tokens/tokens.js'
import type { BackChannelLogout } from './back-channel.js'
import { SessionCookie } from './session-cookie.js'
import { StoredList } from './stored-list.js'

const DEFAULT_TTL = 8 * 3600
/** Remembered consent lasts a year unless revoked. */
const CONSENT_TTL = 365 * 86400

/** The stored form: the session plus the hash of the cookie secret. */
interface SessionRecord extends Session {
  readonly secret: string
}

/**
 * SSO sessions in the store (so every process sharing it knows them), keyed by the hash
 * of the sid, with two indexes kept as {@link StoredList}s: the user's sessions
 * (`listBySubject`, the CLI) and the session's participants — each client that got
 * tokens in the session and the grant family it got them through (back-channel logout,
 * revocation when the session ends).
 */
export class SessionManager implements SessionService {
  readonly cookie: SessionCookie
  private readonly lists: StoredList

  constructor(
    private readonly store: Store,
    cookieKeys: readonly string[],
    private readonly clients: Pick<ClientDirectory, 'find'>,
    private readonly backChannel: BackChannelLogout,
    /** How long a revoked family is remembered: as long as any of its tokens could live. */
    private readonly revocationTtl: number,
    private readonly log: Logger,
  ) {
    this.cookie = new SessionCookie(cookieKeys)
    this.lists = new StoredList(store)
  }

  private key(sid: string): string {
    return `sess:${secretKey(sid)}`
  }

  private participantsKey(sid: string): string {
    return `sess-rp:${secretKey(sid)}`
  }

  private subjectKey(sub: string): string {
    return `sess-sub:${secretKey(sub)}`
  }

  private async record(sid: string): Promise<SessionRecord | undefined> {
    const raw = await this.store.get(this.key(sid))
    if (raw === undefined) return undefined
    try {
      const record = JSON.parse(raw) as SessionRecord
      if (typeof record.sub !== 'string' || typeof record.auth_time !== 'number' || typeof record.exp !== 'number' || typeof record.secret !== 'string') return undefined
      return record.exp > Math.floor(Date.now() / 1000) ? record : undefined
    } catch {
      return undefined
    }
  }

  async current(ctx: RouteContext): Promise<Session | undefined> {
    const cookie = this.cookie.read(ctx)
    if (!cookie) return undefined
    const record = await this.record(cookie.sid)
    if (!record) return undefined
    const a = Buffer.from(secretKey(cookie.secret))
    const b = Buffer.from(record.secret)
    return a.length === b.length && timingSafeEqual(a, b) ? publicView(record) : undefined
  }

  async start(ctx: RouteContext, init: SessionInit): Promise<Session> {
    const prior = await this.current(ctx)
    // Same user signing in again (prompt=login, max_age): one session, re-authenticated. Anyone
    // else: the previous user's session ends (and its clients are told).
    if (prior && prior.sub !== init.sub) {
      const ended = await this.end(prior.sid)
      ended?.notified.catch(() => undefined)
    }
    const sid = prior && prior.sub === init.sub ? prior.sid : SessionCookie.sid()
    const secret = SessionCookie.secret()
    const ttl = init.ttlSeconds ?? DEFAULT_TTL
    const now = Math.floor(Date.now() / 1000)
    const session: Session = {
      sid, sub: init.sub, auth_time: now, exp: now + ttl, iss: ctx.state.issuer,
      ...(init.amr && init.amr.length > 0 ? { amr: [...init.amr] } : {}),
      ...(init.acr !== undefined ? { acr: init.acr } : {}),
      ...(init.idp !== undefined ? { idp: init.idp } : {}),
      ...(init.tenant !== undefined ? { tenant: init.tenant } : {}),
    }
    const record: SessionRecord = { ...session, secret: secretKey(secret) }
    // Independent writes, sent together (a reader of the index skips a session it cannot find yet).
    await Promise.all([this.store.put(this.key(sid), JSON.stringify(record), ttl), this.lists.add(this.subjectKey(init.sub), { id: sid, exp: session.exp })])
    this.cookie.write(ctx, sid, secret, ttl)
    return session
  }

  async get(sid: string): Promise<Session | undefined> {
    if (typeof sid !== 'string' || sid.length > 64) return undefined
    const record = await this.record(sid)
    return record ? publicView(record) : undefined
  }

  async end(sid: string, requestId?: string): Promise<EndedSession | undefined> {
    if (typeof sid !== 'string' || sid.length > 64) return undefined
    // Consume: of two concurrent logouts of one session exactly one revokes and notifies.
    const raw = await this.store.consume(this.key(sid))
    if (raw === undefined) return undefined
    let record: SessionRecord
    try {
      record = JSON.parse(raw) as SessionRecord
    } catch {
      return undefined
    }
    const session = publicView(record)
    const participants = await this.lists.take(this.participantsKey(sid))
    await this.lists.remove(this.subjectKey(session.sub), sid)
    // SPEC §10: tokens of grants made in the session die with it, unless the user granted offline_access.
    const families = new Set(participants.filter((p) => p.offline !== true && typeof p.grant_id === 'string' && p.grant_id !== '').map((p) => p.grant_id as string))
    for (const family of families) await this.store.revokeFamily(family, this.revocationTtl)
    const clientIds = [...new Set(participants.map((p) => String(p.client_id)))]
    const clients = (await Promise.all(clientIds.map((id) => this.clients.find(id)))).filter((c): c is Client => c !== undefined)
    audit(this.log, 'session.ended', { sub: session.sub, ...(typeof session.tenant === 'string' ? { tenant: session.tenant } : {}), sid, client_ids: clientIds, revoked_grants: families.size, request_id: requestId }, 'session ended')
    const notified = this.backChannel.notify(session, clients)
    return { session, clients, notified }
  }

  async listBySubject(sub: string): Promise<Session[]> {
    const members = await this.lists.read(this.subjectKey(sub))
    const sessions = await Promise.all(members.map((m) => this.get(m.id)))
    return sessions.filter((s): s is Session => s !== undefined && s.sub === sub)
  }

  async clientsOf(sid: string): Promise<string[]> {
    const participants = await this.lists.read(this.participantsKey(sid))
    return [...new Set(participants.map((p) => String(p.client_id)))]
  }

  clearCookie(ctx: RouteContext): void {
    this.cookie.clear(ctx)
  }

  /**
   * The token endpoint issued tokens to `clientId` in session `sid` (through grant family
   * `grantId`). False when the session has ended: the grant is then refused, and a family
   * recorded in a race with the logout is revoked here.
   *
   * With `sessionExp` (the session's expiry, carried by the code) the participant is recorded
   * first and the session read once, after: a logout that consumed the session before that
   * read either took the list with this participant in it or left it behind (an orphan that
   * expires with the session), and either way this grant is refused and its family revoked.
   */
  async recordGrant(sid: string, clientId: string, grantId: string | undefined, offline: boolean, sessionExp?: number): Promise<boolean> {
    let exp = sessionExp
    if (exp === undefined || !(exp > Math.floor(Date.now() / 1000))) {
      const session = await this.get(sid)
      if (!session) return false
      exp = session.exp
    }
    const participant = { id: `${clientId} ${grantId ?? ''}`, client_id: clientId, grant_id: grantId ?? '', offline }
    await this.lists.add(this.participantsKey(sid), { ...participant, exp })
    const session = await this.get(sid)
    if (session) {
      // Signed in again since the code was issued: the participant lasts as long as the session.
      if (session.exp > exp) await this.lists.add(this.participantsKey(sid), { ...participant, exp: session.exp })
      return true
    }
    if (grantId && !offline) await this.store.revokeFamily(grantId, this.revocationTtl)
    return false
  }
}

function publicView(record: SessionRecord): Session {
  const { secret: _secret, ...session } = record
  return session
}

/**
 * Remembered consent per user and client (`consent:` records), and the index of grant
 * families each client holds for a user (so revoking consent revokes its refresh tokens).
 */
export class ConsentStore implements ConsentService {
  private readonly lists: StoredList

  constructor(private readonly store: Store, private readonly revocationTtl: number, private readonly refreshTokenTtl: number, private readonly log: Logger) {
    this.lists = new StoredList(store)
  }

  private key(sub: string, clientId: string): string {
    return `consent:${secretKey(`${sub}\u0000${clientId}`)}`
  }

  private grantsKey(sub: string, clientId: string): string {
    return `ugr:${secretKey(`${sub}\u0000${clientId}`)}`
  }

  private async scopes(sub: string, clientId: string): Promise<string[]> {
    const raw = await this.store.get(this.key(sub, clientId))
    if (raw === undefined) return []
    try {
      const value = JSON.parse(raw) as { scope?: unknown }
      return Array.isArray(value.scope) ? value.scope.filter((s): s is string => typeof s === 'string') : []
    } catch {
      return []
    }
  }

  async covers(sub: string, clientId: string, scope: readonly string[]): Promise<boolean> {
    const granted = new Set(await this.scopes(sub, clientId))
    return granted.size > 0 && scope.every((s) => granted.has(s))
  }

  async grant(sub: string, clientId: string, scope: readonly string[], requestId?: string): Promise<void> {
    const merged = [...new Set([...(await this.scopes(sub, clientId)), ...scope])]
    await this.store.put(this.key(sub, clientId), JSON.stringify({ scope: merged, at: Math.floor(Date.now() / 1000) }), CONSENT_TTL)
    audit(this.log, 'consent.granted', { sub, client_id: clientId, scope: merged.join(' '), request_id: requestId }, 'consent granted')
  }

  async revoke(sub: string, clientId: string, requestId?: string): Promise<void> {
    await this.store.delete(this.key(sub, clientId))
    const grants = await this.lists.take(this.grantsKey(sub, clientId))
    for (const g of grants) await this.store.revokeFamily(g.id, this.revocationTtl)
    audit(this.log, 'consent.revoked', { sub, client_id: clientId, revoked_grants: grants.length, request_id: requestId }, 'consent revoked')
  }

  /** The token endpoint issued a refresh token of family `grantId` to the client for the user. */
  recordGrant(sub: string, clientId: string, grantId: string): Promise<void> {
    return this.lists.add(this.grantsKey(sub, clientId), { id: grantId, exp: Math.floor(Date.now() / 1000) + this.refreshTokenTtl })
  }
}
