import { readFile } from 'node:fs/promises'

/** The parts of a V8 `.cpuprofile` (Chrome DevTools format) this summary reads. */
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface FunctionTime {
  function: string
  where: string
  selfMs: number
  selfPercent: number
  totalMs: number
  totalPercent: number
}

export interface ProfileSummary {
  file: string
  sampledMs: number
  /** Self time by area of the request's path (origins grouped, see areaOf). */
  byArea: { area: string; selfMs: number; selfPercent: number }[]
  /** Self time by origin: a package, a Node subsystem, grantd's core, GC, idle. */
  byOrigin: { origin: string; selfMs: number; selfPercent: number }[]
  topSelf: FunctionTime[]
  topTotal: FunctionTime[]
}

/** Where a function comes from, coarse enough to read at a glance. */
export function originOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) {
    const rest = url.slice(5).replace(/^internal\//, '')
    return `node:${rest.split('/')[0]!.replace(/\.js$/, '')}`
  }
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const parts = url.slice(nm + 14).split('/')
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  const m = /\/(core|plugins\/[^/]+|adapters\/[^/]+)\/dist\/([^/]+)$/.exec(url)
  if (m) return m[1] === 'core' ? `grantd core/${m[2]}` : `grantd ${m[1]}`
  return url.replace(/^file:\/\//, '')
}

const KOA = new Set(['koa', '@koa/router', 'koa-compose', 'delegates', 'on-finished', 'ee-first', 'mime-types', 'mime-db', 'statuses', 'type-is', 'content-type', 'cache-content-type', 'vary', 'encodeurl', 'escape-html', 'http-errors', 'parseurl', 'fresh', 'only', 'accepts', 'negotiator', 'cookies', 'keygrip', 'depd', 'path-to-regexp', 'koa-convert', 'media-typer'])
const LOGGING = new Set(['pino', 'sonic-boom', '@pinojs/redact', 'fast-redact', 'quick-format-unescaped', 'safe-stable-stringify', 'thread-stream', 'atomic-sleep', 'on-exit-leak-free', 'pino-std-serializers'])

/** Coarse areas of a token request, so a reader sees at a glance where the time goes. */
export function areaOf(origin: string): string {
  if (origin === 'jose' || origin === 'node:crypto') return 'signing: jose + WebCrypto (main thread)'
  if (origin === '(idle)') return '(idle: main thread off-CPU — signing worker, neighbours, waiting)'
  if (origin.startsWith('grantd ')) return 'grantd core + plugins'
  if (KOA.has(origin)) return 'koa + router'
  if (LOGGING.has(origin)) return 'logging (pino)'
  if (/^node:(_http|http|net|stream|streams|stream_base_commons|events|timers|async_hooks|buffer|url|encoding|process|util|errors|validators|dns|tty)/.test(origin)) return 'node http/net/streams'
  if (origin === '(garbage collector)' || origin === '(program)') return 'gc + vm'
  if (origin === '(native)') return 'native calls (writev, btoa, …)'
  if (/^node:(modules|bootstrap|main|worker|fs|path|vm|per_context|deps|source_map)/.test(origin)) return 'startup / module loading'
  return `other: ${origin}`
}

function shortUrl(url: string): string {
  if (url === '') return ''
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) return url.slice(nm + 14)
  const dist = url.search(/\/(core|plugins|adapters)\//)
  return dist !== -1 ? url.slice(dist + 1) : url.replace(/^file:\/\//, '')
}

/** Self and inclusive time per function (a sample counts once per function on its stack, so recursion does not inflate totals). */
export async function summarizeProfile(file: string, top = 25): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of profile.nodes) byId.set(n.id, n)
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

  const keyOf = (n: ProfileNode): string => `${n.callFrame.functionName || '(anonymous)'}\u0000${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const origins = new Map<string, number>()
  let sampled = 0
  for (let i = 0; i < profile.samples.length; i++) {
    // timeDeltas[i] is the time since the previous sample; it belongs to sample i-1's stack. The shift is immaterial at this scale.
    const us = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0
    const node = byId.get(profile.samples[i]!)
    if (!node) continue
    sampled += us
    const key = keyOf(node)
    self.set(key, (self.get(key) ?? 0) + us)
    const origin = originOf(node.callFrame.url, node.callFrame.functionName)
    origins.set(origin, (origins.get(origin) ?? 0) + us)
    const seen = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!
      if (n.callFrame.functionName === '(root)') continue
      const k = keyOf(n)
      if (seen.has(k)) continue
      seen.add(k)
      total.set(k, (total.get(k) ?? 0) + us)
    }
  }
  const ms = (us: number): number => Math.round(us / 100) / 10
  const pct = (us: number): number => Math.round((us / sampled) * 1000) / 10
  const entry = (key: string): FunctionTime => {
    const [fn, where] = key.split('\u0000') as [string, string]
    const s = self.get(key) ?? 0
    const t = total.get(key) ?? 0
    return { function: fn, where, selfMs: ms(s), selfPercent: pct(s), totalMs: ms(t), totalPercent: pct(t) }
  }
  const areas = new Map<string, number>()
  for (const [origin, us] of origins) {
    const area = areaOf(origin)
    areas.set(area, (areas.get(area) ?? 0) + us)
  }
  return {
    file,
    sampledMs: ms(sampled),
    byArea: [...areas].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, selfMs: ms(us), selfPercent: pct(us) })),
    byOrigin: [...origins].sort((a, b) => b[1] - a[1]).map(([origin, us]) => ({ origin, selfMs: ms(us), selfPercent: pct(us) })),
    topSelf: [...self.keys()].sort((a, b) => (self.get(b) ?? 0) - (self.get(a) ?? 0)).slice(0, top).map(entry),
    topTotal: [...total.keys()].sort((a, b) => (total.get(b) ?? 0) - (total.get(a) ?? 0)).slice(0, top).map(entry),
  }
}

export function formatSummary(s: ProfileSummary, rows = 20): string {
  const lines: string[] = [`${s.file}: ${s.sampledMs} ms sampled (main thread)`, 'self time by area:']
  for (const a of s.byArea) lines.push(`  ${a.selfPercent.toFixed(1).padStart(5)}%  ${a.area}`)
  lines.push('self time by origin:')
  for (const o of s.byOrigin.slice(0, rows)) lines.push(`  ${o.selfPercent.toFixed(1).padStart(5)}%  ${o.origin}`)
  lines.push('top self time:')
  for (const f of s.topSelf.slice(0, rows)) lines.push(`  ${f.selfPercent.toFixed(1).padStart(5)}%  ${f.function}  ${f.where}`)
  lines.push('top inclusive time:')
  for (const f of s.topTotal.slice(0, rows)) lines.push(`  ${f.totalPercent.toFixed(1).padStart(5)}%  ${f.function}  ${f.where}`)
  return lines.join('\n')
}
