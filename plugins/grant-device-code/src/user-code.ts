import { randomInt } from 'node:crypto'

/**
 * RFC 8628 §6.1: user codes from a 20-letter alphabet without vowels (no words, no 0/O or
 * 1/I confusion), 8 characters: 20^8 ≈ 2^34.6 codes. Guessing is bounded by the /device
 * page's per-address limit and the codes' short lifetime.
 */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ'
export const USER_CODE_LENGTH = 8

/** A fresh user code, uniformly random (node:crypto's randomInt has no modulo bias). */
export function generateUserCode(): string {
  let code = ''
  for (let i = 0; i < USER_CODE_LENGTH; i++) code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]
  return code
}

/** `XXXX-XXXX`, as shown to the user (RFC 8628 §6.1: dashes for readability). */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`
}

/**
 * What the user typed, in canonical form: case folded, dashes and white space removed
 * (RFC 8628 §6.1). `undefined` when it cannot be a user code (wrong length or letters).
 */
export function normalizeUserCode(input: string): string | undefined {
  if (input.length > 64) return undefined
  const code = input.toUpperCase().replace(/[\s\-\u2010-\u2015]/g, '')
  if (code.length !== USER_CODE_LENGTH) return undefined
  for (const c of code) if (!USER_CODE_ALPHABET.includes(c)) return undefined
  return code
}
