import { ConfigError } from '../errors.js'

/**
 * One option reader for the config file and every plugin's `options` (SPEC §3): each
 * function checks one value and throws a {@link ConfigError} whose message starts with the
 * value's key path (`providers.upstream.issuer: expected an absolute URL`). The plugin
 * loader prefixes the plugin's own path (`plugins[2].options: …`), so a plugin passes
 * paths relative to its options object and `'(options)'` for the object itself.
 *
 * ```ts
 * const o = option.object(raw ?? {}, '(options)')
 * option.only(o, '', ['ttl'])
 * const ttl = o.ttl === undefined ? 60 : option.integer(o.ttl, 'ttl', 1, 3600)
 * ```
 */

export type OptionRecord = Record<string, unknown>

/** Throw the error every reader throws: `path: message`. */
export function fail(path: string, message: string): never {
  throw new ConfigError(`${path}: ${message}`)
}

/** `null`, `array` or the `typeof` name: what a message says the value was. */
export function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
}

/** The path of `key` inside the object at `path` (`''` is the root). */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return path === '' || path === '(options)' || path === '(config)' ? key : `${path}.${key}`
}

/** A plain object (not null, not an array). */
export function object(v: unknown, path: string): OptionRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, `expected object, got ${typeName(v)}`)
  return v as OptionRecord
}

/** Refuse keys outside `keys`: a typo in a config file is an error, never a silent default. */
export function only(o: OptionRecord, path: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(at(path, k), 'unknown key')
}

/** A non-empty string, at most `maxLength` characters when given. */
export function string(v: unknown, path: string, maxLength?: number): string {
  if (typeof v !== 'string') fail(path, `expected string, got ${typeName(v)}`)
  if (v === '') fail(path, 'must not be empty')
  if (maxLength !== undefined && v.length > maxLength) fail(path, `at most ${maxLength} characters`)
  return v
}

export function boolean(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail(path, `expected boolean, got ${typeName(v)}`)
  return v
}

/** An integer in `[min, max]`. */
export function integer(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(path, `expected integer, got ${typeName(v)}`)
  if (v < min || v > max) fail(path, `must be between ${min} and ${max}`)
  return v
}

/** An array whose items are non-empty strings; items are named `path[i]`. */
export function stringArray(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) fail(path, `expected array, got ${typeName(v)}`)
  return (v as unknown[]).map((item, i) => string(item, at(path, i)))
}

/** One of the listed strings. */
export function oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
  const s = string(v, path)
  if (!(values as readonly string[]).includes(s)) fail(path, `expected one of ${values.join(', ')}`)
  return s as T
}

/** An absolute http(s) URL without a fragment (and without a query unless `allowQuery`). */
export function url(v: unknown, path: string, { allowQuery = true }: { allowQuery?: boolean } = {}): string {
  const s = string(v, path)
  let u: URL
  try {
    u = new URL(s)
  } catch {
    return fail(path, 'expected an absolute URL')
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') fail(path, 'expected an http or https URL')
  if (u.hash) fail(path, 'must not have a fragment')
  if (!allowQuery && u.search) fail(path, 'must not have a query')
  return s
}

/** `read(v, path)` when the value is present, else `fallback`. */
export function optional<T, D = T>(v: unknown, path: string, read: (v: unknown, path: string) => T, fallback: D): T | D {
  return v === undefined ? fallback : read(v, path)
}
