/**
 * What every floor target shares: a bare Koa app on PORT that answers GET /healthz,
 * refuses other methods than POST, reads and parses the urlencoded body and hands the
 * form to the target's own `respond`. No auth, no logging.
 */
import { createServer } from 'node:http'
import Koa from 'koa'

export const port = Number(process.env.PORT)
export const issuer = `http://127.0.0.1:${port}`

function readText(req: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

export function serveFloor(respond: (form: URLSearchParams, ctx: Koa.Context) => Promise<void> | void, onStop: () => void = () => {}): void {
  const app = new Koa()
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
    await respond(form, ctx)
  })
  createServer(app.callback()).listen(port, '127.0.0.1')
  process.on('SIGTERM', () => { onStop(); process.exit(0) })
}
