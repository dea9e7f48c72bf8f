/**
 * The `shoal` command line: runs one command and maps its outcome to an exit status —
 * 0 success, 1 a user error (one line on stderr), 2 an internal error, 130 interrupted.
 * Set SHOAL_DEBUG=1 to see stack traces.
 */
import { CommanderError } from 'commander'
import { isShoalError, ShoalError, systemErrorCode } from '../core/errors.ts'
import { buildProgram } from './program.ts'

const interruption = new AbortController()
let signalCount = 0
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.on(name, () => {
    signalCount += 1
    // A second Ctrl-C means "now": skip the cleanup the first one started.
    if (signalCount > 1) process.exit(130)
    interruption.abort(new ShoalError('ABORTED', `interrupted by ${name}`))
  })
}

const program = buildProgram({ stdout: process.stdout, stdin: process.stdin, signal: interruption.signal })
try {
  await program.parseAsync(process.argv)
} catch (error) {
  process.exitCode = report(error)
}

function report(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 1
  // The reader of our stdout went away (`shoal cat ... | head`): not a failure.
  if (systemErrorCode(error) === 'EPIPE') return 0
  if (process.env['SHOAL_DEBUG']) console.error(error)
  if (isShoalError(error)) {
    console.error(`shoal: ${error.message}`)
    return error.code === 'ABORTED' ? 130 : 1
  }
  const message = error instanceof Error ? error.message : String(error)
  console.error(`shoal: internal error: ${message.split('\n')[0]}`)
  return 2
}
