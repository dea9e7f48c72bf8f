/**
 * Test support: runs the built `shoal` executable as a user would, under the Node that
 * runs the tests, with its own repository and HOME.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

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

export function startShoal(args: string[], options: CliOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [SHOAL_BIN, ...args], {
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
