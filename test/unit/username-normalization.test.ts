/** Pure logic: users-postgres's username key (NFKC + case folding, SPEC §12). */
import t from 'tap'
import { normalizeUsername } from '@grantd/users-postgres'

t.test('one account, many spellings', async (t) => {
  const same: Array<[string, string]> = [
    ['Alice', 'alice'],
    ['ALICE', 'alice'],
    ['\uff21\uff4c\uff49\uff43\uff45', 'alice'], // full-width (NFKC)
    ['Straße', 'strasse'], // ß folds to ss
    ['STRASSE', 'strasse'],
    ['ΟΔΥΣΣΕΥΣ', 'οδυσσευσ'], // final sigma folds like σ
    ['Οδυσσεύς'.normalize('NFD'), 'οδυσσεύσ'], // decomposed input composes
    ['\u2168', 'ix'], // Roman numeral nine (compatibility)
    ['ﬁle', 'file'], // ligature
  ]
  for (const [input, key] of same) t.equal(normalizeUsername(input), key, input)
})

t.test('different names stay different', async (t) => {
  t.not(normalizeUsername('alice '), normalizeUsername('alice'), 'spaces count')
  t.not(normalizeUsername('alíce'), normalizeUsername('alice'), 'accents count')
  t.equal(normalizeUsername(normalizeUsername('Ǆemal')), normalizeUsername('Ǆemal'), 'idempotent')
})
