/**
 * EventQueue: the simulator's agenda, a binary min-heap of events ordered by (time,
 * sequence). The sequence number is assigned at push, so two events due at the same
 * virtual instant come out in the order they were scheduled: ties never depend on heap
 * layout, and a run is reproducible from its seed. Owned and driven by Simulator.
 */

/** One scheduled thing. The fields are generic slots whose meaning depends on `kind`. */
export interface SimEvent {
  time: number
  seq: number
  kind: number
  /** The peer the event happens to (index), or -1. */
  peer: number
  /** The other peer involved (index), or -1. */
  other: number
  /** Used to invalidate superseded events (a replaced tick, a rescheduled flow). */
  version: number
  payload: unknown
}

export class EventQueue {
  readonly #heap: SimEvent[] = []
  #seq = 0
  readonly #sizeMax: number

  /** `sizeMax` bounds the agenda: exceeding it is a runaway scenario, so it throws. */
  constructor(sizeMax = 50_000_000) {
    this.#sizeMax = sizeMax
  }

  get size(): number {
    return this.#heap.length
  }

  /** Schedules an event; returns it so the caller can keep a reference for invalidation. */
  push(time: number, kind: number, peer: number, other: number, version: number, payload: unknown): SimEvent {
    if (!(time >= 0) || time === Infinity) throw new Error(`event time must be finite and >= 0, got ${time}`)
    const heap = this.#heap
    if (heap.length >= this.#sizeMax) throw new Error(`event queue is full (${this.#sizeMax} events): a runaway scenario?`)
    const event: SimEvent = { time, seq: this.#seq++, kind, peer, other, version, payload }
    heap.push(event)
    let index = heap.length - 1
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = heap[parentIndex]!
      if (parent.time < time || (parent.time === time && parent.seq < event.seq)) break
      heap[index] = parent
      index = parentIndex
    }
    heap[index] = event
    return event
  }

  peekTime(): number | undefined {
    return this.#heap[0]?.time
  }

  pop(): SimEvent | undefined {
    const heap = this.#heap
    const top = heap[0]
    if (top === undefined) return undefined
    const last = heap.pop()!
    const length = heap.length
    if (length === 0) return top
    let index = 0
    for (;;) {
      const left = 2 * index + 1
      if (left >= length) break
      const right = left + 1
      let child = left
      let childEvent = heap[left]!
      if (right < length) {
        const rightEvent = heap[right]!
        if (rightEvent.time < childEvent.time || (rightEvent.time === childEvent.time && rightEvent.seq < childEvent.seq)) {
          child = right
          childEvent = rightEvent
        }
      }
      if (last.time < childEvent.time || (last.time === childEvent.time && last.seq < childEvent.seq)) break
      heap[index] = childEvent
      index = child
    }
    heap[index] = last
    return top
  }
}
