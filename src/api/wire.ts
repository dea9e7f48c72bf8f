/**
 * What the HTTP API's server and client agree on beyond JSON bodies: multipart part types
 * for add, and how an error travels (a JSON body, or the X-Stream-Error trailer once a
 * stream has started).
 */
import { isShoalError, ShoalError, type ErrorCode } from '../core/errors.ts'

export const PART_TYPE_DIRECTORY = 'application/x-directory'
export const PART_TYPE_SYMLINK = 'application/symlink'
export const STREAM_ERROR_TRAILER = 'x-stream-error'
export const API_PREFIX = '/api/v0'

export interface ErrorBody {
  code: ErrorCode | 'INTERNAL'
  message: string
}

export function errorBody(error: unknown): ErrorBody {
  if (isShoalError(error)) return { code: error.code, message: error.message }
  // Fastify's own 4xx errors (malformed request, body too large) are the client's mistake.
  const status = (error as { statusCode?: number }).statusCode
  const message = error instanceof Error ? error.message : String(error)
  if (status !== undefined && status >= 400 && status < 500) return { code: 'INVALID_ARGUMENT', message }
  return { code: 'INTERNAL', message }
}

/** The error a client raises for an error body: a ShoalError, or a plain Error for internal ones. */
export function errorFromBody(body: ErrorBody): Error {
  return body.code === 'INTERNAL' ? new Error(`daemon: ${body.message}`) : new ShoalError(body.code, body.message)
}

export function encodeStreamError(error: unknown): string {
  return encodeURIComponent(JSON.stringify(errorBody(error)))
}

export function decodeStreamError(text: string): ErrorBody {
  try {
    const body = JSON.parse(decodeURIComponent(text)) as Partial<ErrorBody>
    if (typeof body.code === 'string' && typeof body.message === 'string') return body as ErrorBody
  } catch {
    // fall through: a trailer we cannot read is still an error
  }
  return { code: 'INTERNAL', message: `the stream ended with an unreadable error: ${text.slice(0, 200)}` }
}
