/** A loopback Back-Channel Logout receiver for tests: records every POST, answers as told. */
import { createServer, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

export interface Receiver {
  url: string
  /** logout_token values received, in order. */
  tokens: string[]
  requests: Array<{ contentType: string | undefined; body: string }>
  /** Answer with this status; 'hang' never answers. */
  mode: number | 'hang'
  close(): Promise<void>
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = {
    url: '', tokens: [], requests: [], mode: 200,
    close: async () => undefined,
  }
  const server = createServer(async (req, res) => {
    const body = await bodyOf(req)
    receiver.requests.push({ contentType: req.headers['content-type'], body })
    const token = new URLSearchParams(body).get('logout_token')
    if (token) receiver.tokens.push(token)
    if (receiver.mode === 'hang') return
    res.writeHead(receiver.mode, { 'cache-control': 'no-store' })
    res.end()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel`
  receiver.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) })
  return receiver
}

export async function waitFor(check: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 25))
  }
  return true
}
