/**
 * Running part of a benchmark or test in a child process and reading back the one
 * `CHILD {json}` line it prints (the comparison benchmarks run each system's nodes so; the
 * flood runs, each flooder), or another marker's (`RESULT` for a whole benchmark). A child
 * that outlives `timeoutMs` is killed.
 */
import { spawn } from 'node:child_process'

export function runChildProcess<Result>(args: readonly string[], label: string, timeoutMs: number, marker = 'CHILD'): Promise<Result> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const line = output.split('\n').find((text) => text.startsWith(`${marker} `))
      if (line === undefined) return reject(new Error(`the ${label} child ended (${code ?? signal}) without a result: ${output.slice(-2_000)}`))
      try {
        resolve(JSON.parse(line.slice(marker.length + 1)) as Result)
      } catch (error) {
        reject(new Error(`the ${label} child's result is not JSON (${(error as Error).message})`))
      }
    })
  })
}

/**
 * In the child: prints `CHILD <result json>` and exits once stdout has taken it (libraries
 * of stopped nodes may leave timers behind). process.exit() straight after console.log
 * can cut a long line written to a pipe.
 */
export function reportToParent(result: unknown): void {
  process.stdout.write(`CHILD ${JSON.stringify(result)}\n`, () => process.exit(0))
}
