/**
 * Usernames compare as Unicode NFKC with full case folding (the Unicode NFKC_Casefold
 * idea, RFC 8265 §3.3's "UsernameCaseMapped" spirit): `ALICE`, `alice` and full-width
 * `ａｌｉｃｅ` are one account, and so are `Straße` and `STRASSE`. JavaScript has no case
 * fold, so upper- then lower-casing stands in for it (it folds ß→ss and final σ/ς like
 * Unicode's full folding does), with NFKC on both sides because case mapping can
 * produce sequences NFKC would compose.
 */
export function normalizeUsername(username: string): string {
  return username.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC')
}
