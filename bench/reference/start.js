// Starts the reference PDS (@atproto/pds) from its environment variables,
// as its own service entry does, for bench/run. Prints `READY` on stdout
// once it listens; stops on SIGTERM/SIGINT.
'use strict'
const { PDS, envToCfg, envToSecrets, readEnv } = require('@atproto/pds')

const main = async () => {
  const env = readEnv()
  const cfg = envToCfg(env)
  const secrets = envToSecrets(env)
  const pds = await PDS.create(cfg, secrets)
  await pds.start()
  process.stdout.write('READY\n')
  const stop = async () => {
    await pds.destroy().catch(() => {})
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
