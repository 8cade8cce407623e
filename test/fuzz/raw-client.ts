/**
 * HTTP/1.1 over a bare `node:net` socket: the fuzz suite sends bytes no HTTP client
 * would (invalid request lines, control characters in headers, lying Content-Length)
 * and reads the answer byte-exactly, with a deadline.
 */
import { connect } from 'node:net'

export interface RawAnswer {
  /** 0 when the connection closed without a status line. */
  status: number
  /** Header lines as sent, in order (names as written). */
  headerLines: string[]
  headers: Map<string, string[]>
  body: Buffer
  /** The server did not finish answering within the deadline. */
  timedOut: boolean
  ms: number
}

export interface RawExchange {
  port: number
  host?: string
  /** The complete request, exactly as it goes on the wire. */
  request: Buffer
  timeoutMs: number
}

/** Send `request`, read one response (the server is asked to close), or time out. */
export function exchange({ port, host = '127.0.0.1', request, timeoutMs }: RawExchange): Promise<RawAnswer> {
  const started = performance.now()
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let settled = false
    const socket = connect({ port, host })
    const finish = (timedOut: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const parsed = parseResponse(Buffer.concat(chunks))
      resolve({ ...parsed, timedOut: timedOut && !parsed.complete, ms: performance.now() - started })
    }
    const timer = setTimeout(() => finish(true), timeoutMs)
    socket.on('data', (d: Buffer) => {
      chunks.push(d)
      // Keep-alive answers stop at the end of the first complete response.
      if (parseResponse(Buffer.concat(chunks)).complete) finish(false)
    })
    socket.on('end', () => finish(false))
    socket.on('close', () => finish(false))
    // A server that answers before reading the whole body may reset the connection: that is an answer.
    socket.on('error', () => finish(false))
    socket.write(request)
  })
}

interface Parsed {
  status: number
  headerLines: string[]
  headers: Map<string, string[]>
  body: Buffer
  complete: boolean
}

export function parseResponse(buf: Buffer): Parsed {
  const empty: Parsed = { status: 0, headerLines: [], headers: new Map(), body: Buffer.alloc(0), complete: false }
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return empty
  const head = buf.subarray(0, end).toString('latin1')
  const [statusLine, ...headerLines] = head.split('\r\n')
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')
  if (!match) return empty
  const headers = new Map<string, string[]>()
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const list = headers.get(name) ?? []
    list.push(line.slice(colon + 1).trim())
    headers.set(name, list)
  }
  const status = Number(match[1])
  const rest = buf.subarray(end + 4)
  const length = headers.get('content-length')?.[0]
  let body = rest
  let complete = false
  if (headers.get('transfer-encoding')?.[0]?.toLowerCase() === 'chunked') {
    const decoded = dechunk(rest)
    body = decoded.body
    complete = decoded.complete
  } else if (length !== undefined) {
    const n = Number(length)
    complete = rest.length >= n
    body = rest.subarray(0, n)
  } else if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
    complete = true
  }
  return { status, headerLines, headers, body, complete }
}

function dechunk(buf: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = buf.indexOf('\r\n', at)
    if (eol === -1) return { body: Buffer.concat(parts), complete: false }
    const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16)
    if (!Number.isFinite(size)) return { body: Buffer.concat(parts), complete: false }
    if (size === 0) return { body: Buffer.concat(parts), complete: true }
    const start = eol + 2
    if (buf.length < start + size + 2) return { body: Buffer.concat(parts), complete: false }
    parts.push(buf.subarray(start, start + size))
    at = start + size + 2
  }
}

/** Assemble a request; `headers` are written verbatim (byte strings), so they may be malformed on purpose. */
export function buildRequest(input: { method: string; target: string; headers: Array<[string, string | Buffer]>; body?: Buffer; requestLine?: Buffer }): Buffer {
  const lines: Buffer[] = [input.requestLine ?? Buffer.from(`${input.method} ${input.target} HTTP/1.1`, 'latin1')]
  for (const [name, value] of input.headers) lines.push(Buffer.concat([Buffer.from(`${name}: `, 'latin1'), typeof value === 'string' ? Buffer.from(value, 'latin1') : value]))
  const head = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')]))
  return Buffer.concat([head, Buffer.from('\r\n'), input.body ?? Buffer.alloc(0)])
}
