/**
 * Expected failures as typed values. Every layer throws or returns a ShoalError with a
 * stable code; the API maps codes to HTTP statuses and the CLI prints the message on one
 * line. Anything that is not a ShoalError is a bug (an internal error).
 */

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_CID'
  | 'INVALID_CONFIG'
  | 'NOT_FOUND'
  | 'PATH_NOT_FOUND'
  | 'NOT_A_DIRECTORY'
  | 'NOT_A_FILE'
  | 'BLOCK_CORRUPT'
  | 'PIN_NOT_FOUND'
  | 'REPO_MISSING'
  | 'REPO_EXISTS'
  | 'REPO_LOCKED'
  | 'QUOTA_EXCEEDED'
  | 'DISK_FULL'
  | 'ABORTED'
  | 'DAEMON_UNREACHABLE'
  | 'FORBIDDEN'
  | 'OFFLINE'
  | 'DIAL_FAILED'
  | 'TOO_MANY_FETCHES'
  | 'INVALID_CONTENT'
  | 'FETCH_FAILED'
  | 'BUSY'

export class ShoalError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ShoalError'
    this.code = code
  }
}

export function isShoalError(error: unknown, code?: ErrorCode): error is ShoalError {
  return error instanceof ShoalError && (code === undefined || error.code === code)
}

/** Node's system errors carry a string `code` such as ENOENT or ENOSPC. */
export function systemErrorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code
  }
  return undefined
}
