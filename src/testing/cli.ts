/**
 * Test support: runs the built `shoal` executable as a user would, under the Node that
 * runs the tests, with its own repository and HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { HttpClient } from '../api/http-client.ts'
import { onCleanup, type HasAfter } from './temp.ts'

export const SHOAL_BIN = fileURLToPath(new URL('../cli/shoal.js', import.meta.url))

/** Daemon flags for tests: listen on a free loopback port only, and no mDNS on the machine's LAN. */
export const LOOPBACK_NETWORK = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  env?: Record<string, string>
  input?: Uint8Array | string
  timeoutMs?: number
}

/** The Node flags of the `shoal` executable's shebang (and `npm start`): a shoal started here runs as a user's does. */
export const SHOAL_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2']

export function startShoal(args: string[], options: CliOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [...SHOAL_NODE_FLAGS, SHOAL_BIN, ...args], {
    env: { ...process.env, SHOAL_DEBUG: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  child.stdin!.end(options.input)
  return child
}

export function runShoal(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return collect(startShoal(args, options), options.timeoutMs ?? 60_000)
}

export function collect(child: ChildProcess, timeoutMs = 60_000): Promise<CliResult> {
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk))
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`shoal did not exit within ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') })
    })
  })
}

const stdoutSoFar = new WeakMap<ChildProcess, { text: string }>()

/**
 * Resolves with the first match in the child's stdout since it started (so that several
 * waits for lines printed in one chunk all succeed), for a long-running command such as
 * the daemon.
 */
export function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  let seen = stdoutSoFar.get(child)
  if (seen === undefined) {
    const created = { text: '' }
    child.stdout!.on('data', (chunk: Buffer) => { created.text += chunk.toString('utf8') })
    stdoutSoFar.set(child, created)
    seen = created
  }
  const output = seen
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = output.text.match(pattern)
      if (match === null) return false
      cleanup()
      resolve(match)
      return true
    }
    const onExit = () => {
      if (!check()) {
        cleanup()
        reject(new Error(`shoal exited before printing ${pattern}; output: ${output.text}`))
      }
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output: ${output.text}`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      child.stdout!.off('data', check)
      child.off('exit', onExit)
    }
    if (check()) return
    child.stdout!.on('data', check)
    child.on('exit', onExit)
  })
}

export interface Daemon {
  repo: string
  peerId: string
  /** Its loopback TCP address, ending in /p2p/<peer id>. */
  address: string
  /** Its HTTP API, e.g. http://127.0.0.1:41234. */
  apiUrl: string
  process: ChildProcess
}

export interface DaemonOptions {
  bootstrap?: readonly string[]
  listen?: string
  /** `shoal config set` pairs applied to a new repository before the daemon starts. */
  config?: Readonly<Record<string, string>>
  /** More `shoal daemon` arguments, e.g. ['--max-upload', '4MiB']. */
  args?: readonly string[]
}

/** Starts `shoal daemon` on loopback with a repository of its own; killed when the test ends, and gone before the cleanups registered earlier run. */
export async function startDaemon(t: HasAfter, repo: string, options: DaemonOptions = {}): Promise<Daemon> {
  const config = Object.entries(options.config ?? {})
  if (config.length > 0) {
    const init = await runShoal(['--repo', repo, 'init'])
    if (init.code !== 0) throw new Error(`shoal init failed: ${init.stderr}`)
    for (const [key, value] of config) {
      const set = await runShoal(['--repo', repo, 'config', 'set', key, value])
      if (set.code !== 0) throw new Error(`shoal config set ${key} failed: ${set.stderr}`)
    }
  }
  const args = ['--repo', repo, 'daemon', '--init', '--api', '127.0.0.1:0', '--listen', options.listen ?? '/ip4/127.0.0.1/tcp/0', '--no-mdns']
  args.push(...(options.args ?? []))
  if ((options.bootstrap ?? []).length > 0) args.push('--bootstrap', ...options.bootstrap!)
  const child = startShoal(args)
  onCleanup(t, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  })
  const [, peerId] = await waitForLine(child, /peer id: (\S+)/)
  const [, listening] = await waitForLine(child, /listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+(?:\/ws)?)/)
  const [, apiUrl] = await waitForLine(child, /API listening on (\S+)/)
  await waitForLine(child, /daemon ready/)
  return { repo, peerId: peerId!, address: `${listening}/p2p/${peerId}`, apiUrl: apiUrl!, process: child }
}

/** A client of the daemon's HTTP API. */
export function daemonApi(daemon: Daemon): HttpClient {
  return new HttpClient(daemon.apiUrl)
}

/** Polls `probe` every 250 ms until it returns a value, or fails after msMax. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, msMax = 30_000): Promise<T> {
  const deadline = Date.now() + msMax
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(250)
  }
}

/** A wait that ran out of time. */
export class TimeoutError extends Error {}

/** `promise`, or a TimeoutError after `timeoutMs` (the work itself goes on until its processes are killed). */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no ${what} within ${(timeoutMs / 1000).toFixed(0)} s`)), timeoutMs)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
