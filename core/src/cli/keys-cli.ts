import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { JWK } from 'jose'
import { ConfigError } from '../errors.js'
import { algFor, effectiveStatuses, generatePrivateJwk, KeySet, SIGNING_ALGS, type KeyStatus, type SigningAlg } from '../tokens/keys.js'

/** A private JWK as the key file holds it, with grantd's `status` member. */
export type FileJwk = JWK & { status?: KeyStatus }

/**
 * `grantd keys add|promote|retire` (SPEC §13): edit a key file's statuses. Every command
 * writes every key's status explicitly (a file without statuses first gets the statuses
 * it already meant, see effectiveStatuses), checks that the result still loads and
 * signs, and replaces the file atomically (mode 0600), so a SIGHUP never reads half a file.
 */
export async function keysFileCommand(sub: 'add' | 'promote' | 'retire', args: string[]): Promise<string> {
  const { values } = parseArgs({ args: joinValues(args, ['--alg', '--kid', '--file']), options: { alg: { type: 'string' }, kid: { type: 'string' }, file: { type: 'string' } } })
  if (!values.file) throw new ConfigError(`keys ${sub}: --file FILE is required`)
  const file = resolve(values.file)
  const keys = await readKeyFile(file)
  let message: string
  if (sub === 'add') {
    if (values.kid !== undefined) throw new ConfigError('keys add: --kid is not an option (the kid is the new key\'s thumbprint)')
    if (values.alg === undefined || !(SIGNING_ALGS as readonly string[]).includes(values.alg)) throw new ConfigError(`keys add: --alg must be one of ${SIGNING_ALGS.join(', ')}`)
    const jwk = await addKey(keys, values.alg as SigningAlg)
    message = `added ${jwk.alg} key ${jwk.kid} as next to ${values.file}: it is published and does not sign; once every process and verifier has it, grantd keys promote --kid ${jwk.kid} --file ${values.file}`
  } else {
    if (values.alg !== undefined) throw new ConfigError(`keys ${sub}: --alg is not an option`)
    if (!values.kid) throw new ConfigError(`keys ${sub}: --kid KID is required`)
    if (sub === 'promote') {
      const retired = promoteKey(keys, values.kid)
      message = `${values.kid} is current in ${values.file}${retired.length ? `; retired ${retired.join(', ')} (still published: remove it from the file once the tokens it signed have expired)` : ''}`
    } else {
      retireKey(keys, values.kid)
      message = `${values.kid} is retired in ${values.file}: published, never signs`
    }
  }
  // The edited file must still be a key set grantd starts with.
  await KeySet.fromJwks({ keys }, values.file)
  await writeKeyFile(file, keys)
  return `${message}\nreload running servers: kill -HUP <pid>`
}

/**
 * `--kid -mC7T…` → `--kid=-mC7T…`: a JWK thumbprint is base64url and may start with "-",
 * which parseArgs would otherwise take for an option and refuse as ambiguous.
 */
function joinValues(args: readonly string[], names: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (names.includes(arg) && i + 1 < args.length) out.push(`${arg}=${args[++i]!}`)
    else out.push(arg)
  }
  return out
}

async function readKeyFile(file: string): Promise<FileJwk[]> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ConfigError(`${file}: cannot read (${code ?? (err as Error).message})${code === 'ENOENT' ? '; make one with grantd keys generate --out FILE' : ''}`)
  }
  const keys = typeof parsed === 'object' && parsed !== null ? (parsed as { keys?: unknown }).keys : undefined
  if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError(`${file}: expected a JWK set {"keys": [...]} with at least one private key`)
  // Validates every key and gives a file without statuses the ones it meant.
  const statuses = effectiveStatuses(keys, file)
  await KeySet.fromJwks({ keys }, file)
  return (keys as FileJwk[]).map((k, i) => ({ ...k, status: statuses[i]! }))
}

function find(keys: FileJwk[], kid: string): FileJwk {
  const key = keys.find((k) => k.kid === kid)
  if (!key) throw new ConfigError(`no key with kid "${kid}" (the file has ${keys.map((k) => `${k.kid} (${k.status})`).join(', ')})`)
  return key
}

/** A new key of this alg, as `next`: published, not signing. */
export async function addKey(keys: FileJwk[], alg: SigningAlg): Promise<FileJwk> {
  const jwk: FileJwk = { ...(await generatePrivateJwk(alg)), status: 'next' }
  // After the last key of its alg: the first key's alg stays the access tokens' default,
  // also once the operator deletes the retired keys in front.
  let at = keys.length
  for (let i = 0; i < keys.length; i++) if (algFor(keys[i]!) === alg) at = i + 1
  keys.splice(at, 0, jwk)
  return jwk
}

/** `next` → `current`; the current key of the same alg becomes `retired`. Returns the kids retired. */
export function promoteKey(keys: FileJwk[], kid: string): string[] {
  const key = find(keys, kid)
  if (key.status === 'current') throw new ConfigError(`keys promote: ${kid} is already current`)
  // A retired key may have been published for less than a verifier's cache; bring it back through a new key.
  if (key.status === 'retired') throw new ConfigError(`keys promote: ${kid} is retired; a retired key does not sign again (add a new one: grantd keys add --alg ${algFor(key)})`)
  const alg = algFor(key)
  const retired: string[] = []
  for (const other of keys) {
    if (other !== key && other.status === 'current' && algFor(other) === alg) {
      other.status = 'retired'
      retired.push(String(other.kid))
    }
  }
  key.status = 'current'
  return retired
}

/** Any key but the last current one → `retired`. */
export function retireKey(keys: FileJwk[], kid: string): void {
  const key = find(keys, kid)
  if (key.status === 'retired') throw new ConfigError(`keys retire: ${kid} is already retired`)
  if (key.status === 'current' && !keys.some((k) => k !== key && k.status === 'current')) {
    throw new ConfigError(`keys retire: ${kid} is the only current key; nothing would sign (add and promote its successor: grantd keys add --alg ${algFor(key)}, then grantd keys promote)`)
  }
  key.status = 'retired'
}

async function writeKeyFile(file: string, keys: readonly FileJwk[]): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}
