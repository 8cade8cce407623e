/**
 * The one store contract suite (SPEC §8): every store adapter — memory, Redis, Redis
 * Cluster, and any a user writes — must pass it. Call it from a tap test with a factory
 * that returns a fresh, empty store (e.g. a unique key prefix).
 */
import type { Store } from '@grantd/core'
import type { Test } from 'tap'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function storeContract(t: Test, name: string, makeStore: () => Promise<Store>): void {
  let n = 0
  const fresh = (prefix: string) => `${prefix}-${process.pid}-${Date.now()}-${++n}`

  t.test(`${name}: put / get / delete`, async (t) => {
    const store = await makeStore()
    const key = fresh('k')
    t.equal(await store.get(key), undefined, 'absent key reads undefined')
    await store.put(key, 'v1', 60)
    t.equal(await store.get(key), 'v1', 'put then get')
    await store.put(key, 'v2', 60)
    t.equal(await store.get(key), 'v2', 'put overwrites')
    t.equal(await store.delete(key), true, 'delete finds it')
    t.equal(await store.delete(key), false, 'second delete finds nothing')
    t.equal(await store.get(key), undefined, 'deleted key reads undefined')
  })

  t.test(`${name}: add only when absent`, async (t) => {
    const store = await makeStore()
    const key = fresh('add')
    t.equal(await store.add(key, 'first', 60), true, 'add stores an absent key')
    t.equal(await store.add(key, 'second', 60), false, 'add refuses a present key')
    t.equal(await store.get(key), 'first', 'and keeps the first value')
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => store.add(fresh('race') + 'x', String(i), 60)))
    t.ok(results.every((r) => r === true), 'distinct keys all succeed')
    const same = fresh('same')
    const raced = await Promise.all(Array.from({ length: 30 }, (_, i) => store.add(same, String(i), 60)))
    t.equal(raced.filter(Boolean).length, 1, 'of 30 concurrent adds of one key exactly one wins')
  })

  t.test(`${name}: consume is atomic`, async (t) => {
    const store = await makeStore()
    const key = fresh('code')
    await store.put(key, 'the-value', 60)
    const results = await Promise.all(Array.from({ length: 50 }, () => store.consume(key)))
    const winners = results.filter((r) => r !== undefined)
    t.equal(winners.length, 1, 'of 50 concurrent consumers exactly one gets the value')
    t.equal(winners[0], 'the-value', 'the winner gets the stored value')
    t.equal(await store.get(key), undefined, 'consumed value is gone')
    t.equal(await store.consume(fresh('never')), undefined, 'consuming an absent key is undefined')

    const fam = fresh('fam')
    await store.put('fk', 'fv', 60, { family: fam })
    const famResults = await Promise.all(Array.from({ length: 50 }, () => store.consume('fk', { family: fam })))
    t.equal(famResults.filter((r) => r !== undefined).length, 1, 'family entries consume atomically too')
  })

  t.test(`${name}: consume leaves a marker in the same step`, async (t) => {
    const store = await makeStore()
    const family = fresh('leave')
    await store.put('rt:x', 'record', 60, { family })
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => store.consume('rt:x', { family, leave: { key: 'rtu:x', value: `marker-${i}`, ttlSeconds: 60 } })))
    t.equal(results.filter((r) => r !== undefined).length, 1, 'of 30 concurrent consumers exactly one gets the value')
    t.match(await store.get('rtu:x', { family }), /^marker-\d+$/, 'the marker is there for every loser to find')
    t.equal(await store.consume('rt:never', { family, leave: { key: 'rtu:never', value: 'm', ttlSeconds: 60 } }), undefined, 'consuming an absent key still leaves the marker')
    t.equal(await store.get('rtu:never', { family }), 'm')
    await store.revokeFamily(family, 60)
    t.equal(await store.get('rtu:x', { family }), undefined, 'markers belong to the family and are revoked with it')
    const plainKey = fresh('plain')
    await store.put(plainKey, 'v', 60)
    t.equal(await store.consume(plainKey, { leave: { key: `${plainKey}:used`, value: 'u', ttlSeconds: 60 } }), 'v', 'outside a family too')
    t.equal(await store.get(`${plainKey}:used`), 'u')
  })

  t.test(`${name}: rotate consumes, leaves the marker and stores the successor in one step (optional)`, async (t) => {
    const store = await makeStore()
    if (!store.rotate) {
      t.pass('this store has no rotate: the core consumes, then puts')
      return
    }
    const family = fresh('rotate')
    await store.put('rt:old', 'record', 60, { family })
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => store.rotate!('rt:old', {
      family, leave: { key: 'rtu:old', value: `marker-${i}`, ttlSeconds: 60 }, next: { key: `rt:next-${i}`, value: `successor-${i}`, ttlSeconds: 60 },
    })))
    const winners = results.flatMap((r, i) => (r === undefined ? [] : [i]))
    t.equal(winners.length, 1, 'of 30 concurrent rotations exactly one gets the value')
    t.equal(results[winners[0]!], 'record', 'the winner gets the stored value')
    t.equal(await store.get('rt:old', { family }), undefined, 'the rotated entry is gone')
    t.match(await store.get('rtu:old', { family }), /^marker-\d+$/, 'the marker is there for every loser to find')
    const successors = await Promise.all(results.map((_, i) => store.get(`rt:next-${i}`, { family })))
    t.same(successors.filter((v) => v !== undefined), [`successor-${winners[0]}`], 'only the winner\'s successor is stored')

    t.equal(await store.rotate('rt:never', { family, leave: { key: 'rtu:never', value: 'm', ttlSeconds: 60 }, next: { key: 'rt:orphan', value: 'o', ttlSeconds: 60 } }), undefined,
      'rotating an absent key answers undefined')
    t.equal(await store.get('rtu:never', { family }), 'm', 'and still leaves the marker')
    t.equal(await store.get('rt:orphan', { family }), undefined, 'but stores no successor')

    await store.revokeFamily(family, 60)
    t.equal(await store.get(`rt:next-${winners[0]}`, { family }), undefined, 'the successor belongs to the family and is revoked with it')
    t.equal(await store.get('rtu:old', { family }), undefined, 'so does the marker')

    const brief = fresh('rotate-ttl')
    await store.put('rt:a', 'a', 60, { family: brief })
    t.equal(await store.rotate('rt:a', { family: brief, leave: { key: 'rtu:a', value: 'm', ttlSeconds: 60 }, next: { key: 'rt:b', value: 'b', ttlSeconds: 1 } }), 'a')
    t.equal(await store.get('rt:b', { family: brief }), 'b', 'the successor is readable before its TTL')
    await sleep(2100)
    t.equal(await store.get('rt:b', { family: brief }), undefined, 'and gone after it')

    const plainKey = fresh('plain-rotate')
    await store.put(plainKey, 'v', 60)
    t.equal(await store.rotate(plainKey, { leave: { key: `${plainKey}:used`, value: 'u', ttlSeconds: 60 }, next: { key: `${plainKey}:next`, value: 'n', ttlSeconds: 60 } }), 'v', 'outside a family too')
    t.equal(await store.get(`${plainKey}:used`), 'u')
    t.equal(await store.get(`${plainKey}:next`), 'n')
  })

  t.test(`${name}: expiry`, async (t) => {
    const store = await makeStore()
    const key = fresh('ttl')
    await store.put(key, 'short', 1)
    t.equal(await store.get(key), 'short', 'readable before its TTL')
    await sleep(2100)
    t.equal(await store.get(key), undefined, 'expired after its TTL')
    t.equal(await store.consume(key), undefined, 'an expired key cannot be consumed')
    t.equal(await store.add(key, 'again', 60), true, 'an expired key can be added again')
  })

  t.test(`${name}: increment`, async (t) => {
    const store = await makeStore()
    const key = fresh('ctr')
    t.equal(await store.increment(key, 60), 1, 'a new counter starts at 1')
    t.equal(await store.increment(key, 60), 2, 'and counts up')
    const many = await Promise.all(Array.from({ length: 20 }, () => store.increment(key, 60)))
    t.same([...many].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 3), 'concurrent increments are serialised')
    const short = fresh('ctr-ttl')
    await store.increment(short, 1)
    await sleep(2100)
    t.equal(await store.increment(short, 1), 1, 'a counter restarts after its window')
  })

  t.test(`${name}: decrement gives a reservation back`, async (t) => {
    const store = await makeStore()
    const key = fresh('dec')
    t.equal(await store.decrement(key), 0, 'an absent counter answers 0')
    t.equal(await store.get(key), undefined, 'and is not created')
    await store.increment(key, 60)
    await store.increment(key, 60)
    t.equal(await store.decrement(key), 1, 'takes one back')
    t.equal(await store.decrement(key), 0, 'down to zero')
    t.equal(await store.decrement(key), 0, 'never below zero')
    t.equal(await store.increment(key, 60), 1, 'and counts up again from there')
    // Reserve-then-give-back, as the brute-force limits use it: of 40 concurrent reservations
    // against a limit of 10, exactly 10 fit, whatever the interleaving with the give-backs.
    const limit = fresh('reserve')
    const admitted = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const n = await store.increment(limit, 60)
      if (n > 10) return false
      if (i % 2 === 0) await store.decrement(limit)
      return true
    }))
    t.ok(admitted.filter(Boolean).length >= 10, 'at least the limit is admitted')
    t.equal(Number(await store.get(limit)), 40 - admitted.filter((a, i) => a && i % 2 === 0).length, 'the counter is exactly the reservations kept')
    const many = fresh('dec-many')
    for (let i = 0; i < 20; i++) await store.increment(many, 60)
    const after = await Promise.all(Array.from({ length: 25 }, () => store.decrement(many)))
    t.same([...after].sort((a, b) => a - b), [...Array.from({ length: 5 }, () => 0), ...Array.from({ length: 20 }, (_, i) => i)], 'concurrent decrements are serialised and stop at zero')
    const short = fresh('dec-ttl')
    await store.increment(short, 1)
    await store.increment(short, 1)
    await store.decrement(short)
    await sleep(2100)
    t.equal(await store.get(short), undefined, 'a decrement keeps the counter\'s window')
    t.equal(await store.decrement(short), 0, 'and does not bring an expired counter back')
  })

  t.test(`${name}: family revocation`, async (t) => {
    const store = await makeStore()
    const family = fresh('grant')
    const other = fresh('grant')
    await store.put('rt:a', 'A', 60, { family })
    await store.put('rt:b', 'B', 60, { family })
    await store.put('code:c', 'C', 60, { family })
    await store.put('rt:a', 'other-family', 60, { family: other })
    await store.put('plain', 'P', 60)
    t.equal(await store.get('rt:a', { family }), 'A', 'a family entry reads back')
    t.equal(await store.isFamilyRevoked(family), false, 'a live family is not revoked')
    await store.revokeFamily(family, 60)
    t.equal(await store.isFamilyRevoked(family), true, 'a revoked family says so')
    t.equal(await store.get('rt:a', { family }), undefined, 'every entry of the family is gone')
    t.equal(await store.get('rt:b', { family }), undefined, 'the second refresh token is gone')
    t.equal(await store.consume('code:c', { family }), undefined, 'the code is gone')
    t.equal(await store.get('rt:a', { family: other }), 'other-family', 'another family is untouched')
    t.equal(await store.isFamilyRevoked(other), false, 'and not revoked')
    t.equal(await store.get('plain'), 'P', 'entries outside families are untouched')
    await store.revokeFamily(fresh('empty'), 60)
    t.pass('revoking an empty family is fine')
    const brief = fresh('brief')
    await store.revokeFamily(brief, 1)
    await sleep(2100)
    t.equal(await store.isFamilyRevoked(brief), false, 'the revocation marker expires with its TTL')
  })

  t.test(`${name}: large and odd values, unusual keys`, async (t) => {
    const store = await makeStore()
    const big = 'x'.repeat(512 * 1024)
    await store.put(fresh('big'), big, 60)
    const bigKey = fresh('big2')
    await store.put(bigKey, big, 60)
    t.equal((await store.get(bigKey))?.length, big.length, '512 KiB value round-trips')
    const odd = ['', ' ', '\u0000nul', 'emoji 🔑', 'quote " \' \\ ', '{"json":true}', 'line\r\nbreak', 'ünïcødé']
    for (const value of odd) {
      const key = fresh('odd')
      await store.put(key, value, 60)
      t.equal(await store.get(key), value, `value ${JSON.stringify(value).slice(0, 20)} round-trips`)
    }
    const keys = ['with space', 'colon:colon', 'brace{tag}', '}{', 'slash/and\\back', 'ünï', 'a'.repeat(300), '*?[glob]']
    for (const k of keys) {
      const key = fresh(k)
      await store.put(key, k, 60)
      t.equal(await store.get(key), k, `key ${JSON.stringify(k).slice(0, 20)} works`)
      t.equal(await store.consume(key), k, `key ${JSON.stringify(k).slice(0, 20)} consumes`)
    }
    const famOdd = fresh('fam {odd}')
    await store.put('x y', 'v', 60, { family: famOdd })
    t.equal(await store.get('x y', { family: famOdd }), 'v', 'a family with an odd name stores')
    await store.revokeFamily(famOdd, 60)
    t.equal(await store.get('x y', { family: famOdd }), undefined, 'families with odd names revoke too')
  })

  t.test(`${name}: indexUpdate (optional) is one atomic list update`, async (t) => {
    const store = await makeStore()
    if (!store.indexUpdate) {
      t.pass('not implemented: the core falls back to its locked update')
      return
    }
    const update = store.indexUpdate.bind(store)
    const now = () => Math.floor(Date.now() / 1000)
    const read = async (key: string) => JSON.parse((await store.get(key)) ?? '[]') as Array<{ id: string; exp: number; [k: string]: unknown }>
    const member = (id: string, exp: number, extra: Record<string, unknown> = {}) => ({ id, member: JSON.stringify({ id, exp, ...extra }), exp, now: now(), maxMembers: 200 })
    const key = fresh('index')
    await update(key, member('a', now() + 60, { client_id: 'c "1" / ü', offline: false }))
    await update(key, member('b', now() + 60))
    t.same(await read(key), [{ id: 'a', exp: now() + 60, client_id: 'c "1" / ü', offline: false }, { id: 'b', exp: now() + 60 }].map((m) => ({ ...m, exp: (m.exp as number) })), 'members append in order, fields round-trip')
    await update(key, member('a', now() + 120))
    t.same((await read(key)).map((m) => m.id), ['b', 'a'], 'the same id is replaced (moved to the end)')
    t.equal((await read(key)).find((m) => m.id === 'a')?.exp, now() + 120, 'with its new exp')
    await update(key, { id: 'b', now: now(), maxMembers: 200 })
    t.same((await read(key)).map((m) => m.id), ['a'], 'an update without a member only removes')
    await update(key, { id: 'a', now: now(), maxMembers: 200 })
    t.equal(await store.get(key), undefined, 'an index left empty is deleted')
    await update(key, { id: 'nothing', now: now(), maxMembers: 200 })
    t.equal(await store.get(key), undefined, 'removing from an absent index leaves nothing')

    const capped = fresh('capped')
    for (let i = 0; i < 5; i++) await update(capped, { ...member(`m${i}`, now() + 60), maxMembers: 3 })
    t.same((await read(capped)).map((m) => m.id), ['m2', 'm3', 'm4'], 'the cap keeps the latest members')

    const stale = fresh('stale')
    await update(stale, member('old', now() + 60))
    await update(stale, { ...member('new', now() + 60), now: now() + 61 })
    t.same((await read(stale)).map((m) => m.id), ['new'], 'members whose exp is not after now are dropped')

    const junk = fresh('junk')
    await store.put(junk, '{"not":"a list"}', 60)
    await update(junk, member('x', now() + 60))
    t.same((await read(junk)).map((m) => m.id), ['x'], 'a value that is no list counts as empty')
    const bad = fresh('bad')
    await store.put(bad, '[{"id":1,"exp":2},"s",{"id":"ok","exp":' + (now() + 60) + '},{"id":"noexp"}]', 60)
    await update(bad, member('y', now() + 60))
    t.same((await read(bad)).map((m) => m.id), ['ok', 'y'], 'members without a string id and a numeric exp are dropped')

    // Ids and fields holding the texts a store might look for when it walks a list without parsing it.
    const tricky = fresh('tricky')
    const ids = ['web },{"id":"x', 'a","exp":1,"b', 'https://rp.example/path', 'back\\slash\\', 'ünï "q"']
    for (const id of ids) await update(tricky, { id, member: JSON.stringify({ id, exp: now() + 60, client_id: '},{"id":"y","exp":0}', note: '","exp":1' }), exp: now() + 60, now: now(), maxMembers: 200 })
    t.same((await read(tricky)).map((m) => m.id), ids, 'odd ids and fields survive the walk')
    await update(tricky, { id: ids[1]!, now: now(), maxMembers: 200 })
    await update(tricky, member(ids[3]!, now() + 90))
    t.same((await read(tricky)).map((m) => m.id), [ids[0], ids[2], ids[4], ids[3]], 'and are found by id')
    t.equal((await read(tricky))[0]!.client_id, '},{"id":"y","exp":0}', 'fields come back as they were')

    const raced = fresh('raced')
    await Promise.all(Array.from({ length: 40 }, (_, i) => update(raced, member(`r${i}`, now() + 60))))
    t.equal((await read(raced)).length, 40, '40 concurrent additions: none lost')
    await Promise.all(Array.from({ length: 20 }, (_, i) => update(raced, { id: `r${i}`, now: now(), maxMembers: 200 })))
    t.same((await read(raced)).map((m) => m.id).sort(), Array.from({ length: 20 }, (_, i) => `r${i + 20}`).sort(), '20 concurrent removals: exactly those gone')

    const brief = fresh('brief-index')
    await update(brief, member('short', now() + 1))
    t.ok(await store.get(brief), 'present while its latest member lives')
    await sleep(2100)
    t.equal(await store.get(brief), undefined, 'the index expires with its latest member')
  })

  t.test(`${name}: one key deleted, consumed, expired and set again many times`, async (t) => {
    const store = await makeStore()
    const key = fresh('churn')
    let ok = true
    for (let i = 0; i < 300; i++) {
      await store.put(key, `v${i}`, 60)
      if ((await store.get(key)) !== `v${i}`) ok = false
      if (i % 3 === 0) ok = (await store.delete(key)) && ok
      else if (i % 3 === 1) ok = (await store.consume(key)) === `v${i}` && ok
      else ok = (await store.delete(key)) && (await store.increment(key, 60)) === 1 && (await store.delete(key)) && ok
      if ((await store.get(key)) !== undefined) ok = false
    }
    t.ok(ok, 'every round reads what it wrote and finds the key gone after')
    t.equal(await store.add(key, 'last', 60), true, 'and add still sees it absent')
    t.equal(await store.get(key), 'last')
  })

  t.test(`${name}: ping`, async (t) => {
    const store = await makeStore()
    await store.ping()
    t.pass('ping resolves')
  })
}
