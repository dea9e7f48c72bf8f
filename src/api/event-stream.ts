/**
 * Server-sent events (the WHATWG `text/event-stream` format) as far as the HTTP API uses
 * them: events of an `event:` name and `data:` lines, comment lines (`: keepalive`), LF or
 * CRLF line ends. The server formats events with formatEvent; the client reads a response
 * incrementally with EventStreamParser, which never holds more than a bounded line or
 * event, whatever the daemon sends.
 */
export const EVENT_STREAM_TYPE = 'text/event-stream'

/**
 * The longest line (and the largest event's data) the parser takes: a `data:` line of a
 * pub/sub message of 1 MiB is its base64 (1.4 MB) with the other fields.
 */
export const EVENT_LINE_BYTES_MAX = 2 * 1024 * 1024

export interface ServerSentEvent {
  /** `message` when the event names none. */
  event: string
  data: string
}

/** One event; `data` may hold newlines (each line becomes a `data:` line). */
export function formatEvent(event: string, data: string): string {
  const name = event === 'message' ? '' : `event: ${event}\n`
  return `${name}${data.split('\n').map((line) => `data: ${line}\n`).join('')}\n`
}

export function formatComment(text: string): string {
  return `: ${text}\n\n`
}

const LF = 0x0a
const CR = 0x0d

export class EventStreamParser {
  readonly #bytesMax: number
  readonly #decoder = new TextDecoder()
  /** The start of a line whose end has not arrived. */
  #partial: Uint8Array[] = []
  #partialBytes = 0
  #event = ''
  #data: string[] = []
  #dataBytes = 0

  constructor(bytesMax = EVENT_LINE_BYTES_MAX) {
    this.#bytesMax = bytesMax
  }

  /** The events that `chunk` completes, in order. */
  push(chunk: Uint8Array): ServerSentEvent[] {
    const events: ServerSentEvent[] = []
    let start = 0
    for (let end = chunk.indexOf(LF, start); end !== -1; end = chunk.indexOf(LF, start)) {
      let line = chunk.subarray(start, end)
      start = end + 1
      if (this.#partial.length > 0) {
        this.#checkLength(this.#partialBytes + line.byteLength)
        line = Buffer.concat([...this.#partial, line])
        this.#partial = []
        this.#partialBytes = 0
      }
      this.#checkLength(line.byteLength)
      if (line.at(-1) === CR) line = line.subarray(0, -1)
      this.#onLine(this.#decoder.decode(line), events)
    }
    if (start < chunk.byteLength) {
      const rest = chunk.subarray(start)
      this.#checkLength(this.#partialBytes + rest.byteLength)
      // A copy: the rest of a large chunk must not keep the whole chunk alive.
      this.#partial.push(rest.slice())
      this.#partialBytes += rest.byteLength
    }
    return events
  }

  #onLine(line: string, events: ServerSentEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0) events.push({ event: this.#event === '' ? 'message' : this.#event, data: this.#data.join('\n') })
      this.#event = ''
      this.#data = []
      this.#dataBytes = 0
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1)
    if (field === 'event') {
      this.#event = value
    } else if (field === 'data') {
      this.#dataBytes += value.length + 1
      this.#checkLength(this.#dataBytes)
      this.#data.push(value)
    }
    // Other fields (id, retry) mean nothing to this API.
  }

  #checkLength(bytes: number): void {
    // Our daemon never sends one: this is not a failure the user can fix.
    if (bytes > this.#bytesMax) throw new Error(`daemon: an event stream line or event over ${this.#bytesMax} bytes`)
  }
}
