/**
 * bench:swarm's parent side of a child process (the child side is swarm-child.ts): spawns
 * it, reads its `SWARM <KIND> {json}` lines, waits for each with a bound, sends GO, and kills
 * it by PID. Every process and cleanup the benchmark starts is registered in one place, so
 * that an interrupted benchmark (SIGINT, SIGTERM) leaves nothing behind either.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { TimeoutError } from '../src/testing/cli.ts'
import { GO_LINE, SWARM_LINE_PREFIX } from './swarm-child.ts'

const STDERR_TAIL_BYTES = 4 * 1024
const KILL_WAIT_MS_MAX = 5_000
const KILL_POLL_MS = 50

export type MessageKind = 'READY' | 'DONE' | 'RECEIVED' | 'ERROR'

/** A child that reported a failure: `code` lets the runner classify it. */
export class ChildFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

const liveProcesses = new Set<ChildProcess>()

/** Kills every process still registered, and every other child this process has, by PID; for signal handlers. */
export function killAllSync(): void {
  for (const child of liveProcesses) killByPid(child)
  for (const pid of childPids()) killPid(pid)
}

/**
 * Kills, by PID, every child this process still has, and waits (bounded) until they are
 * gone. Between transfers the benchmark has none, so this only reaches processes that
 * helpers started without handing them over: the `shoal init`, `config set` and `add`
 * commands of testing/cli.ts, still running when a Shoal set-up timed out.
 */
export async function killRemainingChildren(): Promise<void> {
  const pids = childPids()
  for (const pid of pids) killPid(pid)
  const deadline = performance.now() + KILL_WAIT_MS_MAX
  while (pids.some(isRunning) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, KILL_POLL_MS))
}

/** This process's children, from Linux's /proc/self/task/<thread>/children (none where /proc lacks it). */
function childPids(): number[] {
  try {
    return readdirSync('/proc/self/task').flatMap((thread) => {
      try {
        return readFileSync(`/proc/self/task/${thread}/children`, 'utf8').split(' ').filter(Boolean).map(Number)
      } catch {
        return [] // The thread ended meanwhile.
      }
    })
  } catch {
    return []
  }
}

/** Alive and not a zombie waiting to be reaped. */
function isRunning(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z'
  } catch {
    return false
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

export function killByPid(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  killPid(child.pid)
}

/** SIGKILL by PID, then waits (bounded) until the process is gone. */
export async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  killByPid(child)
  await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, KILL_WAIT_MS_MAX).unref())])
}

/** Registers a process started elsewhere (Shoal's daemons), so that killAllSync reaches it too. */
export function trackProcess(child: ChildProcess): void {
  liveProcesses.add(child)
  child.once('close', () => liveProcesses.delete(child))
}

export class BenchChild {
  readonly process: ChildProcess
  readonly #messages = new Map<MessageKind, object[]>()
  readonly #waiters = new Set<() => void>()
  #stderrTail = ''
  #exited: string | undefined

  constructor(readonly label: string, args: readonly string[]) {
    this.process = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    trackProcess(this.process)
    // A write after the child died is reported through 'error' on stdin; its exit says more.
    this.process.stdin!.on('error', () => {})
    createInterface({ input: this.process.stdout! }).on('line', (line) => {
      if (!line.startsWith(SWARM_LINE_PREFIX)) return
      const rest = line.slice(SWARM_LINE_PREFIX.length)
      const space = rest.indexOf(' ')
      const kind = rest.slice(0, space) as MessageKind
      const list = this.#messages.get(kind) ?? []
      list.push(JSON.parse(rest.slice(space + 1)) as object)
      this.#messages.set(kind, list)
      this.#wake()
    })
    this.process.stderr!.on('data', (chunk: Buffer) => {
      if (process.env['SWARM_DEBUG']) process.stderr.write(chunk)
      this.#stderrTail = (this.#stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES)
    })
    this.process.on('error', (error) => {
      this.#exited = `could not start: ${error.message}`
      this.#wake()
    })
    this.process.on('close', (code, signal) => {
      this.#exited = `exited (${code ?? signal})`
      this.#wake()
    })
  }

  /** The first message of `kind`; rejects on an ERROR message, an exit, or after `timeoutMs` (`what` names the wait and its bound). */
  async waitFor<T extends object>(kind: MessageKind, timeoutMs: number, what: string): Promise<T> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const found = this.#messages.get(kind)?.[0]
      if (found !== undefined) return found as T
      const failure = this.#messages.get('ERROR')?.[0] as { code: string; message: string } | undefined
      if (failure !== undefined) throw new ChildFailure(failure.code, `${this.label}: ${failure.message}`)
      if (this.#exited !== undefined) throw new Error(`${this.label} ${this.#exited} before ${what}${this.#stderrText()}`)
      const remainingMs = deadline - performance.now()
      if (remainingMs <= 0) throw new TimeoutError(`${this.label}: no ${what}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remainingMs)
        function done(): void {
          clearTimeout(timer)
          resolve()
        }
        this.#waiters.add(done)
      })
    }
  }

  go(): void {
    this.process.stdin!.write(`${GO_LINE}\n`)
  }

  async kill(): Promise<void> {
    if (this.#exited === undefined) await killAndWait(this.process)
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter()
    this.#waiters.clear()
  }

  #stderrText(): string {
    const tail = this.#stderrTail.trim()
    return tail === '' ? '' : `; its stderr ends with:\n${tail}`
  }
}

