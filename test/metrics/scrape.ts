/** Prometheus text exposition, parsed into `name{label="v",…}` → value (labels sorted). */
export type Samples = Map<string, number>

export function parseMetrics(text: string): Samples {
  const out: Samples = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels = m[2] ? [...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort() : []
    out.set(labels.length ? `${m[1]}{${labels.join(',')}}` : m[1]!, Number(m[3]))
  }
  return out
}

/** The key of a sample: labels sorted, as parseMetrics stores them. */
export function sample(name: string, labels: Record<string, string> = {}): string {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort()
  return l.length ? `${name}{${l.join(',')}}` : name
}

export async function scrape(url: string): Promise<{ status: number; type: string | null; samples: Samples; text: string }> {
  const res = await fetch(url)
  const text = await res.text()
  return { status: res.status, type: res.headers.get('content-type'), samples: res.status === 200 ? parseMetrics(text) : new Map(), text }
}
