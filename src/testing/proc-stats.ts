/**
 * What Linux's /proc says about a process: its resident memory and the CPU time it has
 * used. For benchmarks that watch daemons from outside, as an operator's tools would.
 */
import { readFileSync } from 'node:fs'

/** USER_HZ on Linux: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100

/** VmRSS of /proc/<pid>/status. */
export function residentBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (match === null) throw new Error(`no VmRSS for process ${pid}`)
  return Number(match[1]) * 1024
}

/** User and system CPU time (utime + stime of /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  // The command name, in parentheses, may hold spaces: fields are counted after it.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
}
