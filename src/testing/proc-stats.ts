/**
 * What Linux's /proc says about a process: its resident memory and the CPU time it has
 * used. For benchmarks that watch daemons from outside, as an operator's tools would.
 */
import { readFileSync } from 'node:fs'

/** USER_HZ on Linux: /proc/<pid>/stat counts CPU time in these ticks. */
const TICKS_PER_SECOND = 100

/** Resident memory of /proc/<pid>/status: the whole, and the anonymous, file-backed and shared parts it sums. */
export interface ResidentMemory {
  totalBytes: number
  /** The process's own memory: its heaps (V8's and the allocator's), stacks. */
  anonymousBytes: number
  /** Pages of mapped files (the executable, libraries, files a database maps), which the kernel may drop and read again. */
  fileBytes: number
  shmemBytes: number
}

export function residentMemory(pid: number): ResidentMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
    if (match === null) throw new Error(`no ${field} for process ${pid}`)
    return Number(match[1]) * 1024
  }
  return { totalBytes: kib('VmRSS'), anonymousBytes: kib('RssAnon'), fileBytes: kib('RssFile'), shmemBytes: kib('RssShmem') }
}

/**
 * The resident part of the C allocator's main heap (glibc's brk heap, `[heap]` in
 * /proc/<pid>/smaps): where the main thread's malloc'd memory lives, buffers below the
 * mmap threshold among it. 0 when the process has none.
 */
export function mainHeapResidentBytes(pid: number): number {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8')
  const mapping = smaps.indexOf(' [heap]\n')
  if (mapping === -1) return 0
  const match = /^Rss:\s+(\d+) kB$/m.exec(smaps.slice(mapping))
  if (match === null) throw new Error(`no Rss for the heap of process ${pid}`)
  return Number(match[1]) * 1024
}

/** VmRSS of /proc/<pid>/status. */
export function residentBytes(pid: number): number {
  return residentMemory(pid).totalBytes
}

/** User and system CPU time (utime + stime of /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  // The command name, in parentheses, may hold spaces: fields are counted after it.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
}
