// The reference PLC directory (@did-plc/server) on loopback with its
// in-memory database, which still validates every operation, for the PDS
// black-box tests.
//
// Usage: node plc-server.mjs [port]   (0 or none: an ephemeral port)
// Prints `PLC_PORT=<port>` once listening; exits when stdin closes, so it
// never outlives the test process that started it.
import plcServer from '@did-plc/server'

const { PlcServer, Database } = plcServer
const port = Number(process.argv[2] ?? 0)
const server = PlcServer.create({ db: Database.mock(), port })
const http = await server.start()
process.stdout.write(`PLC_PORT=${http.address().port}\n`)

const stop = async () => {
  await server.destroy().catch(() => {})
  process.exit(0)
}
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
