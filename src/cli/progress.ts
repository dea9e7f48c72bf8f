/**
 * Progress of a long transfer on stderr: bytes, rate and ETA, drawn only when stderr is a
 * terminal (nothing is written otherwise, so pipes and logs stay clean).
 */
import { SingleBar } from 'cli-progress'
import type { FetchProgress } from '../node/api.ts'

export interface Progress {
  add(bytes: number): void
  stop(): void
}

const SILENT: Progress = { add() {}, stop() {} }

export function startProgress(label: string, totalBytes: number | undefined, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return SILENT
  const startedMs = Date.now()
  const known = totalBytes !== undefined && totalBytes > 0
  const bar = new SingleBar({
    stream,
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 50,
    format: known ? `${label} {bar} {done} / {size} | {rate}/s | ETA {eta_formatted}` : `${label} {done} | {rate}/s`,
  })
  let doneBytes = 0
  const payload = () => ({
    done: formatBytes(doneBytes),
    size: formatBytes(totalBytes ?? 0),
    rate: formatBytes(doneBytes / Math.max((Date.now() - startedMs) / 1000, 0.001)),
  })
  bar.start(known ? totalBytes : 1, 0, payload())
  return {
    add(bytes) {
      doneBytes += bytes
      bar.update(known ? doneBytes : 0, payload())
    },
    stop() {
      bar.stop()
    },
  }
}

export interface FetchProgressDisplay {
  update(progress: FetchProgress): void
  stop(): void
}

/**
 * A swarm download's progress: bytes held of the total, the download rate, peers sending
 * of peers in the session, and the ETA at the current rate. Nothing unless on a terminal.
 */
export function startFetchProgress(stream: NodeJS.WriteStream = process.stderr): FetchProgressDisplay {
  if (!stream.isTTY) return { update() {}, stop() {} }
  const bar = new SingleBar({
    stream,
    hideCursor: true,
    clearOnComplete: true,
    format: 'fetching {bar} {percentage}% {held} / {size} | {rate}/s | {sending}/{peers} peers | ETA {eta}',
  })
  bar.start(1, 0, { held: '0 B', size: '?', rate: '0 B', sending: 0, peers: 0, eta: '?' })
  return {
    update(progress) {
      const leafShare = progress.leafCount === 0 ? 0 : progress.heldCount / progress.leafCount
      const size = progress.totalBytes
      const held = size === undefined ? progress.bytesReceived : Math.round(size * leafShare)
      const left = size === undefined ? undefined : size - held
      const eta = left === undefined || progress.bytesPerSecond <= 0 ? '?' : `${Math.ceil(left / progress.bytesPerSecond)}s`
      bar.update(leafShare, {
        held: formatBytes(held),
        size: size === undefined ? '?' : formatBytes(size),
        rate: formatBytes(progress.bytesPerSecond),
        sending: progress.sendingPeerCount,
        peers: progress.peerCount,
        eta,
      })
    },
    stop() {
      bar.stop()
    },
  }
}

/** Passes the chunks through, reporting their sizes. */
export async function* counted(chunks: AsyncIterable<Uint8Array>, progress: Progress): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    progress.add(chunk.byteLength)
    yield chunk
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`
}
