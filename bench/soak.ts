/**
 * `npm run soak [-- --daemons 10 --minutes 30 --warmup-minutes 15 --sample-seconds 10 --seed 1 --samples-file FILE]`:
 * daemons on loopback under steady gossip, DHT and transfer load (src/testing/soak.ts), their
 * retained heap and RSS trends after the warm-up, and the load that ran. Exits 1 when a trend is
 * beyond ±5% or the load failed. The last line is `RESULT {json}`. With --samples-file, every sample
 * is appended to FILE as a line of JSON (`{atMs, daemons: [{rss, retained, ...}]}`).
 * `npm run soak -- --from-samples FILE --warmup-minutes 45` runs nothing: it prints the memory
 * trends of a run's saved samples from that minute on (exit 1 when one is beyond ±5%).
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { CHANGE_PERCENT_MAX, runSoak, soakMemory, type MemoryTrend, type SoakMemory, type SoakSample, type TrendSummary } from '../src/testing/soak.ts'

const { values } = parseArgs({ options: {
  daemons: { type: 'string', default: '10' },
  minutes: { type: 'string', default: '30' },
  'warmup-minutes': { type: 'string' },
  'sample-seconds': { type: 'string', default: '10' },
  seed: { type: 'string', default: '1' },
  'samples-file': { type: 'string' },
  'from-samples': { type: 'string' },
} })
const MiB = 2 ** 20

const interrupted = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`soak: ${signal}, stopping the daemons`)
    interrupted.abort()
  })
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  for (const row of rows) console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '))
}

const percent = (value: number) => `${value >= 0 ? '+' : ''}${value.toFixed(2)}%`
const mib = (bytes: number) => (bytes / MiB).toFixed(1)
const trendCells = (trend: MemoryTrend) => [mib(trend.startBytes), mib(trend.endBytes), percent(trend.changePercent), trend.mibPerHour.toFixed(2)]
const summaryCells = (summary: TrendSummary, which: 'Median' | 'Worst') => ['', '', percent(summary[`changePercent${which}`]), summary[`mibPerHour${which}`].toFixed(2)]

/** The retained heap and RSS trends of every daemon, then where RSS went. */
function printMemory(memory: SoakMemory): void {
  const rows = [
    ['daemon', 'RSS start MiB', 'end MiB', 'change', 'MiB/h', 'retained heap start MiB', 'end MiB', 'change', 'MiB/h', 'after major GCs', 'heap used change'],
    ...memory.daemons.map((daemon) => [`${daemon.index}${daemon.index === 0 ? ' (bootstrap)' : ''}`, ...trendCells(daemon.rss), ...trendCells(daemon.heap), String(daemon.samplesAfterMajorGc), percent(daemon.heapUsed.changePercent)]),
    ['median', ...summaryCells(memory.rss, 'Median'), ...summaryCells(memory.heap, 'Median'), '', ''],
    [`worst (RSS ${memory.rss.worstDaemon}, heap ${memory.heap.worstDaemon})`, ...summaryCells(memory.rss, 'Worst'), ...summaryCells(memory.heap, 'Worst'), '', ''],
  ]
  printTable(rows)
  console.log('where RSS went (MiB/h; RSS = anonymous + mapped files; native = anonymous - V8 heap committed - external: the C allocator\'s heaps, of which its main heap apart, and the heap pages V8 keeps beyond its committed size until a trim):')
  printTable([
    ['daemon', 'RSS', 'mapped files', 'anonymous', 'V8 heap committed', 'external (buffers)', 'native', 'allocator main heap', 'V8 heap trims (MiB given back)', 'malloc_trim gave back (MiB)'],
    ...memory.daemons.map(({ index, rss, rssParts: { anonymous, file, heapCommitted, external, allocatorMainHeap }, heapTrims, heapTrimmedBytes, mallocTrimmedBytes }) =>
      [String(index), ...[rss, file, anonymous, heapCommitted, external].map((trend) => trend.mibPerHour.toFixed(2)), (anonymous.mibPerHour - heapCommitted.mibPerHour - external.mibPerHour).toFixed(2), allocatorMainHeap.mibPerHour.toFixed(2), `${heapTrims} (${mib(heapTrimmedBytes)})`, mib(mallocTrimmedBytes)]),
  ])
}

/** Trends of a run's saved samples over the window that starts at --warmup-minutes. */
function reanalyse(file: string): void {
  if (values['warmup-minutes'] === undefined) throw new Error('--from-samples needs --warmup-minutes: where the window starts')
  const samples = readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').map((line, index) => {
    try {
      return JSON.parse(line) as SoakSample
    } catch {
      throw new Error(`${file}:${index + 1} is not a sample (a line of JSON)`)
    }
  })
  const memory = soakMemory(samples, Number(values['warmup-minutes']) * 60_000)
  console.log(`${file}: ${memory.daemons.length} daemons; trends over ${memory.windowMinutes.toFixed(1)} min from minute ${values['warmup-minutes']}, ${memory.daemons[0]!.rss.sampleCount} samples a daemon`)
  printMemory(memory)
  console.log(memory.failures.length === 0 ? `PASS: every retained heap and RSS trend within ±${CHANGE_PERCENT_MAX}%` : `FAIL:\n  ${memory.failures.join('\n  ')}`)
  process.exitCode = memory.failures.length === 0 ? 0 : 1
}

/** Runs the soak and prints its report. */
async function soak(): Promise<void> {
  const samplesFile = values['samples-file']
  // One run a file: a re-run with the same name starts it afresh instead of mixing two runs' samples.
  if (samplesFile !== undefined) writeFileSync(samplesFile, '')
  const result = await runSoak({
    daemons: Number(values.daemons),
    minutes: Number(values.minutes),
    warmupMinutes: values['warmup-minutes'] === undefined ? undefined : Number(values['warmup-minutes']),
    sampleSeconds: Number(values['sample-seconds']),
    seed: values.seed,
    signal: interrupted.signal,
    onProgress: (line) => console.log(line),
    onSample: samplesFile === undefined ? undefined : (sample) => appendFileSync(samplesFile, `${JSON.stringify(sample)}\n`),
  })
  const { settings, memory, load, cpu } = result
  console.log(`\nsoak: ${settings.daemons} daemons on loopback for ${settings.minutes} min, seed ${settings.seed}; trends over the last ${memory.windowMinutes.toFixed(1)} min (after ${settings.warmupMinutes} min of warm-up), ${memory.daemons[0]!.rss.sampleCount} samples a daemon, one every ${settings.sampleSeconds} s`)
  printMemory(memory)
  const { gossip, dht, transfers } = load
  const rates = settings.load
  console.log(`load: gossip ${rates.gossipMessagesPerSecond} messages/s of ${rates.gossipMessageBytes} B; a DHT round (provide, find-providers, IPNS put, get) every ${rates.dhtRoundSeconds} s; a ${mib(rates.transferBytes)} MiB transfer every ${rates.transferSeconds} s, cycling through ${rates.transferContents} contents`)
  console.log(`  gossip: ${gossip.published} published (${gossip.publishFailed} failed, ${gossip.publishedToNobody} to nobody), ${gossip.delivered} of ${gossip.expectedDeliveries} deliveries (${(gossip.deliveryRatio * 100).toFixed(3)}%), ${gossip.duplicateDeliveries} duplicates, ${gossip.droppedForSlowReader} dropped for a slow reader`)
  console.log(`  DHT: ${dht.rounds} rounds; provide ${dht.provide.ok} ok/${dht.provide.failed} failed, find-providers ${dht.findProviders.ok}/${dht.findProviders.failed}, put ${dht.put.ok}/${dht.put.failed}, get ${dht.get.ok}/${dht.get.failed}`)
  console.log(`  transfers: ${transfers.ok} ok, ${transfers.failed} failed, ${mib(transfers.bytesReceived)} MiB received, fetch median ${transfers.fetchMsMedian?.toFixed(0) ?? '-'} ms`)
  console.log(`  ticks skipped (an operation still running): gossip ${gossip.ticksSkipped}, DHT ${dht.ticksSkipped}, transfers ${transfers.ticksSkipped}; errors ${load.errorCount}${load.errors.length > 0 ? `:\n    ${load.errors.join('\n    ')}` : ''}`)
  console.log(`cpu: daemons ${cpu.daemonsCores.toFixed(2)} cores together (busiest ${cpu.daemonPercentMax.toFixed(1)}% of a core), harness ${cpu.harnessCores.toFixed(2)} cores; load average ${cpu.loadAverageStart.map((value) => value.toFixed(2)).join(' ')} at the start, ${cpu.loadAverageEnd.map((value) => value.toFixed(2)).join(' ')} at the end, on ${availableParallelism()} cores shared with whatever else runs`)
  console.log(result.passed ? `PASS: every retained heap and RSS trend within ±${settings.changePercentMax}%, load ran without failures` : `FAIL:\n  ${result.failures.join('\n  ')}`)
  console.log(`RESULT ${JSON.stringify(result)}`)
  process.exitCode = result.passed ? 0 : 1
}

try {
  if (values['from-samples'] === undefined) await soak()
  else reanalyse(values['from-samples'])
} catch (error) {
  console.error(`soak: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
}
