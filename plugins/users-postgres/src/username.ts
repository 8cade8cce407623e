/** Usernames compare as NFKC with full case folding: the core's rule, shared with users-static and the throttle. */
export { normalizeUsername } from '@grantd/core'
