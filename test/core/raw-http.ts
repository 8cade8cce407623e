/**
 * Byte-exact HTTP for malformed-input tests: fetch normalises or refuses what these
 * tests need to send (invalid UTF-8, chunked bodies, odd content types).
 */
import { request } from 'node:http'

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: Record<string, unknown> | undefined
}

export interface RawRequest {
  method?: string
  path: string
  headers?: Record<string, string>
  body?: Buffer | string
  /** Send the body in pieces without Content-Length (Transfer-Encoding: chunked). */
  chunked?: boolean
}

export function rawRequest(baseUrl: string, req: RawRequest): Promise<RawResponse> {
  const url = new URL(req.path, baseUrl)
  const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8')
  const headers: Record<string, string> = { ...req.headers }
  if (body && !req.chunked) headers['content-length'] = String(body.length)
  return new Promise((resolve, reject) => {
    const r = request(url, { method: req.method ?? 'POST', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: Record<string, unknown> | undefined
        try { json = JSON.parse(text) as Record<string, unknown> } catch { json = undefined }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
      res.on('error', reject)
    })
    r.on('error', reject)
    if (body && req.chunked) {
      for (let i = 0; i < body.length; i += 4096) r.write(body.subarray(i, i + 4096))
    } else if (body) r.write(body)
    r.end()
  })
}

export const FORM = 'application/x-www-form-urlencoded'
