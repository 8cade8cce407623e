/**
 * The floor: the least a Koa server can do for a urlencoded POST — read the body, parse
 * it, answer a small JSON. No auth, no crypto, no logging. Any token server on Koa is
 * slower than this; the ratios in the results are relative to it.
 */
import { createServer } from 'node:http'
import Koa from 'koa'

const port = Number(process.env.PORT)
const app = new Koa()

function readText(req: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/healthz') {
    ctx.body = { status: 'ok' }
    return
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405
    return
  }
  const form = new URLSearchParams(await readText(ctx.req))
  ctx.set('Cache-Control', 'no-store')
  ctx.body = { ok: true, grant_type: form.get('grant_type'), scope: form.get('scope') }
})

createServer(app.callback()).listen(port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
