/**
 * Usernames compare as Unicode NFKC with full case folding (the Unicode NFKC_Casefold
 * idea, RFC 8265 §3.3's "UsernameCaseMapped" spirit): `ALICE`, `alice` and full-width
 * `ａｌｉｃｅ` are one account, and so are `Straße` and `STRASSE`. JavaScript has no case
 * fold, so upper- then lower-casing stands in for it (it folds ß→ss like Unicode's full
 * folding does; a final ς becomes σ), with NFKC on both sides because case mapping can
 * produce sequences NFKC would compose.
 */
export function normalizeUsername(username: string): string {
  // toLowerCase() writes a word-final sigma as ς; Unicode case folding maps it to σ.
  return username.normalize('NFKC').toUpperCase().toLowerCase().replaceAll('\u03c2', '\u03c3').normalize('NFKC')
}
