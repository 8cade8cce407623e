/**
 * A minimal browser for black-box login tests: keeps cookies, follows redirects one hop
 * at a time, and reads HTML forms. Cookies are kept per origin (host:port) because the
 * tests run two grantd servers on one loopback address; a real browser would keep them
 * per host, which is why production deployments give each server its own host name.
 */

export interface Hop {
  url: string
  status: number
  location?: string
  body: string
  headers: Headers
}

export interface HtmlForm {
  action: string
  method: string
  fields: Record<string, string>
}

const decodeEntities = (s: string): string =>
  s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag)
  return m ? decodeEntities(m[2] ?? m[3] ?? '') : undefined
}

/** Every `<form>` of a page with its inputs (hidden and visible) and their values. */
export function parseForms(html: string, baseUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const fields: Record<string, string> = {}
    for (const input of m[2]!.matchAll(/<(input|button)\b[^>]*>/gi)) {
      const name = attr(input[0], 'name')
      if (name === undefined) continue
      if (input[1]!.toLowerCase() === 'button') continue
      fields[name] = attr(input[0], 'value') ?? ''
    }
    forms.push({ action: new URL(attr(m[1]!, 'action') ?? baseUrl, baseUrl).href, method: (attr(m[1]!, 'method') ?? 'get').toLowerCase(), fields })
  }
  return forms
}

/** Every link of a page (`<a href>`), resolved against the page URL, with its text. */
export function parseLinks(html: string, baseUrl: string): Array<{ href: string; text: string }> {
  return [...html.matchAll(/<a\b([^>]*)>([\s\S]*?)<\/a>/gi)].flatMap((m) => {
    const href = attr(m[1]!, 'href')
    return href === undefined ? [] : [{ href: new URL(href, baseUrl).href, text: m[2]!.replace(/<[^>]*>/g, '').trim() }]
  })
}

export class Browser {
  private readonly jars = new Map<string, Map<string, string>>()

  cookies(url: string): Map<string, string> {
    const origin = new URL(url).host
    let jar = this.jars.get(origin)
    if (!jar) this.jars.set(origin, (jar = new Map()))
    return jar
  }

  private store(url: string, headers: Headers): void {
    const jar = this.cookies(url)
    for (const line of headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a))
      if (expired || value === '') jar.delete(name)
      else jar.set(name, value)
    }
  }

  /** One request, no redirect following. */
  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Hop> {
    const jar = this.cookies(url)
    const headers: Record<string, string> = {}
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    let body: string | undefined
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(init.form).toString()
    }
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) })
    this.store(url, res.headers)
    const location = res.headers.get('location')
    return { url, status: res.status, body: await res.text(), headers: res.headers, ...(location ? { location: new URL(location, url).href } : {}) }
  }

  /**
   * Follow redirects until a page answers or the next hop leaves the servers under test
   * (`stopAt`: e.g. the client's redirect_uri origin). Returns every hop.
   */
  async follow(url: string, init: { method?: string; form?: Record<string, string> } = {}, stopAt: (url: string) => boolean = () => false): Promise<Hop[]> {
    const hops: Hop[] = []
    let hop = await this.request(url, init)
    hops.push(hop)
    while (hop.location && hop.status >= 300 && hop.status < 400) {
      if (stopAt(hop.location)) break
      if (hops.length > 20) throw new Error('too many redirects')
      hop = await this.request(hop.location)
      hops.push(hop)
    }
    return hops
  }
}
