import { cpus, release, platform, totalmem, loadavg } from 'node:os'
import { existsSync } from 'node:fs'

/** What a figure was measured on: numbers from different machines are not comparable. */
export interface MachineFigures {
  cpuModel: string
  cores: number
  memoryGiB: number
  node: string
  os: string
  taskset: boolean
  loadAverageAtStart: number[]
}

/** `taskset` pins a process to one CPU; without it (macOS) the scheduler decides. */
export function hasTaskset(): boolean {
  return platform() === 'linux' && ['/usr/bin/taskset', '/bin/taskset'].some((p) => existsSync(p))
}

export function machineFigures(): MachineFigures {
  const list = cpus()
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${platform()} ${release()}`,
    taskset: hasTaskset(),
    loadAverageAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
  }
}
