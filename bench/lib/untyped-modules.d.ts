/** The few parts of autocannon and oidc-provider the benchmark uses; neither ships types. */
declare module 'autocannon' {
  interface Histogram { average: number; mean: number; total: number; p50: number; p99: number; max: number }
  interface Result {
    requests: Histogram
    latency: Histogram
    '2xx': number
    non2xx: number
    errors: number
    timeouts: number
    duration: number
  }
  interface Options {
    url: string
    method?: string
    headers?: Record<string, string>
    body?: string
    connections?: number
    duration?: number
    pipelining?: number
    /** Per-request hooks (rotating-load-worker.ts): build each body, read each answer. */
    requests?: Array<{
      method?: string
      setupRequest?: (request: Record<string, unknown>, context: Record<string, unknown>) => Record<string, unknown>
      onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
    }>
  }
  export default function autocannon(options: Options): Promise<Result>
}

declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    on(event: string, listener: (...args: never[]) => void): this
    /** Interactions (targets/oidc-provider-flows.ts): the pending one, and finishing it. */
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ uid: string; params: Record<string, unknown> }>
    interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<void>
    Grant: new (init: { accountId: string; clientId: string }) => { addOIDCScope(scope: string): void; addResourceScope(resource: string, scope: string): void; save(): Promise<string> }
  }
}
