import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventStreamParser, formatComment, formatEvent } from './event-stream.ts'

const bytes = (text: string) => new TextEncoder().encode(text)

test('events come out whole however the stream is cut', () => {
  const stream = bytes(`${formatComment('keepalive')}${formatEvent('message', '{"a":"é"}')}${formatEvent('dropped', 'two\nlines')}`)
  for (let cut = 0; cut <= stream.byteLength; cut++) {
    const parser = new EventStreamParser()
    const events = [...parser.push(stream.subarray(0, cut)), ...parser.push(stream.subarray(cut))]
    assert.deepEqual(events, [{ event: 'message', data: '{"a":"é"}' }, { event: 'dropped', data: 'two\nlines' }], `cut at ${cut}`)
  }
})

test('CRLF line ends, fields without a space or a value, and unknown fields', () => {
  const parser = new EventStreamParser()
  assert.deepEqual(parser.push(bytes('id: 7\r\nevent:error\r\ndata\r\ndata:x\r\n\r\n\n')), [{ event: 'error', data: '\nx' }])
})

test('a line or an event longer than the bound is refused before it is held', () => {
  assert.throws(() => new EventStreamParser(16).push(bytes(`data: ${'x'.repeat(20)}`)), /over 16 bytes/)
  const parser = new EventStreamParser(16)
  parser.push(bytes('data: 0123456789\n'))
  assert.throws(() => parser.push(bytes('data: 0123456789\n')), /over 16 bytes/, 'two lines of one event')
  const split = new EventStreamParser(16)
  split.push(bytes('data: 01234567'))
  assert.throws(() => split.push(bytes('89abcdef')), /over 16 bytes/, 'a line that grows across chunks')
})
