import 'reflect-metadata';
import { Injectable, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  GEARMAN_JOB_SERVER,
  GEARMAN_SERVERS,
  GearmanModule,
  type GearmanJobServer,
  type GearmanModuleFactoryOptions,
  type GearmanOptionsFactory,
} from '../../../lib/index.js';
import { appModule, GreetingService, startHybridApp } from './apps.js';

/** A stand-in for @nestjs/config's ConfigService: typed reads from an environment map. */
@Injectable()
class ConfigService {
  constructor(private readonly env: Record<string, string | undefined>) {}
  get(key: string): string | undefined {
    return this.env[key];
  }
}

function configModule(env: Record<string, string | undefined>) {
  @Module({ providers: [{ provide: ConfigService, useValue: new ConfigService(env) }], exports: [ConfigService] })
  class ConfigModule {}
  return ConfigModule;
}

/** The way an app typically switches between its own job server and a cluster. */
function gearmanOptionsFrom(config: ConfigService): GearmanModuleFactoryOptions {
  const servers = config.get('GEARMAN_SERVERS');
  return servers
    ? { servers: servers.split(',') }
    : { embeddedServer: { port: Number(config.get('GEARMAN_PORT') ?? 4730), logger: false } };
}

@Injectable()
class GearmanConfig implements GearmanOptionsFactory {
  constructor(private readonly config: ConfigService) {}
  createGearmanOptions(): GearmanModuleFactoryOptions {
    return gearmanOptionsFrom(this.config);
  }
}

describe('GearmanModule.forRootAsync', () => {
  const opened: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((app) => app.close()));
  });

  it('takes its options from a ConfigModule through useFactory + inject', async () => {
    const ConfigModule = configModule({ GEARMAN_PORT: '0' });
    const gearman = GearmanModule.forRootAsync({
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: async (config: ConfigService) => gearmanOptionsFrom(config),
    });
    const app = await startHybridApp(appModule(gearman));
    opened.push(app);
    expect(app.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address().port).toBeGreaterThan(0);
    expect(await app.get(GreetingService).greet('factory')).toBe('hello factory');
  });

  it('points a second app at the first one through the same factory and an environment switch', async () => {
    const ConfigModule = configModule({ GEARMAN_PORT: '0' });
    const owner = await startHybridApp(
      appModule(GearmanModule.forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory: gearmanOptionsFrom })),
    );
    opened.push(owner);
    const port = owner.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address().port;
    const OtherConfig = configModule({ GEARMAN_SERVERS: `127.0.0.1:${port}` });
    const client = await NestFactory.create(
      appModule(GearmanModule.forRootAsync({ imports: [OtherConfig], inject: [ConfigService], useFactory: gearmanOptionsFrom })),
      { logger: false },
    );
    opened.push(client);
    await client.init();
    expect(client.get(GEARMAN_JOB_SERVER)).toBeNull();
    expect(client.get(GEARMAN_SERVERS)).toEqual([`127.0.0.1:${port}`]);
    expect(await client.get(GreetingService).greet('remote')).toBe('hello remote');
  });

  it('builds its options with a useClass factory that has its own dependencies', async () => {
    const gearman = GearmanModule.forRootAsync({ imports: [configModule({ GEARMAN_PORT: '0' })], useClass: GearmanConfig });
    const app = await startHybridApp(appModule(gearman));
    opened.push(app);
    expect(await app.get(GreetingService).greet('class')).toBe('hello class');
  });

  it('reuses an options factory the imported module already provides, with useExisting', async () => {
    const ConfigModule = configModule({ GEARMAN_PORT: '0' });
    @Module({ imports: [ConfigModule], providers: [GearmanConfig], exports: [GearmanConfig] })
    class GearmanConfigModule {}
    const app = await startHybridApp(appModule(GearmanModule.forRootAsync({ imports: [GearmanConfigModule], useExisting: GearmanConfig })));
    opened.push(app);
    expect(await app.get(GreetingService).greet('existing')).toBe('hello existing');
  });

  it('refuses async options that name no way, or two ways, to build the options', () => {
    expect(() => GearmanModule.forRootAsync({})).toThrow('exactly one of useFactory, useClass or useExisting');
    expect(() => GearmanModule.forRootAsync({ useFactory: () => ({}), useClass: GearmanConfig })).toThrow('exactly one of');
  });
});
