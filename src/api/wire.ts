/**
 * What the HTTP API's server and client agree on beyond JSON bodies: multipart part types
 * for add, how an error travels (a JSON body, or the X-Stream-Error trailer once a
 * stream has started, or an `error` event in an event stream), and pub/sub messages as
 * JSON (in server-sent events, and in `shoal pubsub sub --json`).
 */
import { isShoalError, ShoalError, type ErrorCode } from '../core/errors.ts'
import type { PubSubMessage } from '../node/api.ts'

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

/** Event names of a pub/sub subscription's event stream besides `message` (one per message). */
/** The events of POST fetch's stream. */
export const FETCH_EVENT_PROGRESS = 'progress'
export const FETCH_EVENT_RESULT = 'result'
export const FETCH_EVENT_ERROR = 'error'

export const PUBSUB_EVENT_DROPPED = 'dropped'
export const PUBSUB_EVENT_ERROR = 'error'

export interface PubSubMessageJson {
  topic: string
  /** base64 */
  data: string
  /** null under StrictNoSign */
  from: string | null
  messageId: string
  receivedFrom: string
}

export function pubsubMessageToJson(message: PubSubMessage): PubSubMessageJson {
  return {
    topic: message.topic,
    data: Buffer.from(message.data).toString('base64'),
    from: message.from ?? null,
    messageId: message.messageId,
    receivedFrom: message.receivedFrom,
  }
}

export function pubsubMessageFromJson(json: PubSubMessageJson): PubSubMessage {
  return {
    topic: json.topic,
    data: new Uint8Array(Buffer.from(json.data, 'base64')),
    from: json.from ?? undefined,
    messageId: json.messageId,
    receivedFrom: json.receivedFrom,
  }
}
