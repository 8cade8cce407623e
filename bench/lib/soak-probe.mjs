// Bench-only probe, preloaded into the server process with `node --import` (never part of
// grantd): samples RSS, heap and event-loop delay (perf_hooks.monitorEventLoopDelay) and
// appends one JSON line per SOAK_PROBE_MS to the file named by SOAK_PROBE_FILE. SIGUSR2
// restarts the cumulative histogram (the soak sends it when warm-up ends). No listener,
// no endpoint: the file is the only channel.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { appendFileSync } from 'node:fs'

const file = process.env.SOAK_PROBE_FILE
if (file) {
  const everyMs = Number(process.env.SOAK_PROBE_MS ?? 1000)
  const interval = monitorEventLoopDelay({ resolution: 5 })
  const cumulative = monitorEventLoopDelay({ resolution: 5 })
  interval.enable()
  cumulative.enable()
  let cumulativeSince = Date.now()
  const ms = (ns) => Math.round(ns / 1e4) / 100
  process.on('SIGUSR2', () => { cumulative.reset(); cumulativeSince = Date.now() })
  const timer = setInterval(() => {
    const mem = process.memoryUsage()
    const line = {
      t: Date.now(),
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      eld: { p50: ms(interval.percentile(50)), p99: ms(interval.percentile(99)), max: ms(interval.max), mean: ms(interval.mean) },
      eldCumulative: { since: cumulativeSince, p50: ms(cumulative.percentile(50)), p99: ms(cumulative.percentile(99)), p999: ms(cumulative.percentile(99.9)), max: ms(cumulative.max), mean: ms(cumulative.mean) },
    }
    interval.reset()
    appendFileSync(file, JSON.stringify(line) + '\n')
  }, everyMs)
  timer.unref()
}
