using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.ErrorHandling;
using Procurement.Server.Http;
using Procurement.Server.Services;
using Procurement.Server.Telemetry;
using Procurement.Storage;

namespace Procurement.Server.Hosting;

/// <summary>Builds the server. Tests call it too, on a free port and a temp database, overriding services.</summary>
public static class ProcurementHost
{
    /// <summary>Short command-line switches and the configuration keys they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> SwitchMappings = new Dictionary<string, string>
    {
        ["--db"] = $"{ServerOptions.Section}:{nameof(ServerOptions.Database)}",
    };

    public static WebApplication Build(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        var demo = args.Contains("--demo");
        args = args.Where(a => a != "--demo").ToArray();

        // The content root is the program's own folder, so appsettings.json is found from any working folder.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddCommandLine(args, SwitchMappings.ToDictionary());
        if (demo)
        {
            builder.Configuration[$"{ServerOptions.Section}:{nameof(ServerOptions.Demo)}"] = "true";
        }

        // Containers pass the bootstrap key as PROCUREMENT_BOOTSTRAP_OPERATOR_KEY; explicit configuration wins.
        var bootstrapSetting = $"{ServerOptions.Section}:{nameof(ServerOptions.BootstrapOperatorKey)}";
        var bootstrapKey = Environment.GetEnvironmentVariable("PROCUREMENT_BOOTSTRAP_OPERATOR_KEY");
        if (!string.IsNullOrEmpty(bootstrapKey) && string.IsNullOrEmpty(builder.Configuration[bootstrapSetting]))
        {
            builder.Configuration[bootstrapSetting] = bootstrapKey;
        }

        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["Kestrel:Endpoints:Default:Url"]))
        {
            builder.WebHost.UseUrls(ServerOptions.DefaultUrl);
        }

        var httpJson = builder.Configuration.GetValue($"{ServerOptions.Section}:{nameof(ServerOptions.HttpJson)}", defaultValue: true);
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (httpJson)
            {
                // gRPC (HTTP/2) and HTTP/JSON (HTTP/1.1 or HTTP/2) share each endpoint, cleartext included.
                k.ConfigureEndpointDefaults(e => e.UseHttp1AndPriorKnowledgeHttp2(k.Limits.RequestHeadersTimeout));
                k.AllowAlternateSchemes = true;
            }
            else
            {
                // gRPC alone: without TLS there is no ALPN, so cleartext endpoints speak HTTP/2 only.
                k.ConfigureEndpointDefaults(e => e.Protocols = HttpProtocols.Http2);
            }
            ConfigureLimits(k.Limits);
            builder.Configuration.GetSection("Kestrel:Limits").Bind(k.Limits);
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        // Log lines carry the trace and span of the call they belong to.
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);

        AddProcurement(builder.Services, builder.Configuration);
        if (httpJson)
        {
            builder.Services.AddHttpJson();
        }
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        if (httpJson)
        {
            app.UseHttpJson();
        }
        app.MapGrpcService<ContractGrpcService>();
        app.MapGrpcService<AllocationGrpcService>();
        app.MapGrpcService<SlaGrpcService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        return app;
    }

    /// <summary>
    /// Kestrel's limits, set deliberately (docs/operations.md lists them; each can be changed with
    /// <c>--Kestrel:Limits:…</c>, which is applied after these).
    /// </summary>
    private static void ConfigureLimits(KestrelServerLimits limits)
    {
        // A lab's service multiplexes its calls and watches over a few connections.
        limits.Http2.MaxStreamsPerConnection = 256;
        // Headers carry the key and trace context, never data: 16 KiB in all is ample, and bounds what a client can make the server hold.
        limits.MaxRequestHeadersTotalSize = 16 * 1024;
        limits.Http2.MaxRequestHeaderFieldSize = 8 * 1024;
        limits.MaxRequestHeaderCount = 64;
        limits.RequestHeadersTimeout = TimeSpan.FromSeconds(10);
        // Idle connections close after two minutes; pings find a peer that vanished under an open watch.
        limits.KeepAliveTimeout = TimeSpan.FromMinutes(2);
        limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
        limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
        limits.MaxConcurrentConnections = 10_000;
        // A request body below 240 bytes/s after a 5 s grace is dropped (Kestrel's default, kept); gRPC
        // lifts it for streaming calls, whose bodies may idle.
        limits.MinRequestBodyDataRate = new MinDataRate(bytesPerSecond: 240, gracePeriod: TimeSpan.FromSeconds(5));
    }

    public static void AddProcurement(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ServerOptions>().Bind(configuration.GetSection(ServerOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ServerOptions>, ServerOptionsValidator>();
        services.AddSingleton(TimeProvider.System);
        // SQLite file by default; PostgreSQL for --db postgres://… (several replicas on one database).
        services.AddSingleton<IProcurementStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ServerOptions>>().Value;
            return StoreFactory.Create(options.Database, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), options.SqliteBusyTimeout,
                sp.GetRequiredService<StorageInstruments>());
        });
        services.AddProcurementTelemetry(configuration);
        services.AddSingleton<ApiKeys>();
        services.AddOptions<FairUseOptions>().Bind(configuration.GetSection(FairUseOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<FairUseOptions>, FairUseOptionsValidator>();
        services.AddSingleton<FairUse>();
        services.AddSingleton<Mutations>();
        services.AddSingleton<ReadCache<Api.V1.GetPoolStatusResponse>>();
        services.AddSingleton<ReadCache<Api.V1.Contract>>();
        services.AddSingleton<DemoSeeder>();
        services.AddHostedService<StartupTasks>();
        services.AddSingleton<IdempotencyJanitor>();
        services.AddHostedService(sp => sp.GetRequiredService<IdempotencyJanitor>());
        services.AddSingleton<AllocationSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<AllocationSweeper>());
        services.AddSingleton<UsageFolder>();
        services.AddHostedService(sp => sp.GetRequiredService<UsageFolder>());
        services.AddSingleton<WriterReport>();
        services.AddHostedService(sp => sp.GetRequiredService<WriterReport>());

        // gRPC creates an interceptor or a service per call unless DI holds it; these hold only
        // singletons, so one instance each serves every call.
        services.AddSingleton<ErrorInterceptor>();
        services.AddSingleton<AuthInterceptor>();
        services.AddSingleton<EdgeValidationInterceptor>();
        services.AddSingleton<ContractGrpcService>();
        services.AddSingleton<AllocationGrpcService>();
        services.AddSingleton<SlaGrpcService>();
        services.AddGrpc(o =>
        {
            // Outermost first: telemetry sees every call's final status; errors wrap auth so auth
            // failures get the rich error model too.
            o.Interceptors.Add<TelemetryInterceptor>();
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<AuthInterceptor>();
            o.Interceptors.Add<EdgeValidationInterceptor>();
            o.MaxReceiveMessageSize = 16 * 1024 * 1024;
        });
        services.AddGrpcReflection();
        // The database check remembers its answer for a second, so probes cost almost nothing and
        // the very first probe after start-up already checks the database.
        services.AddSingleton<DatabaseHealthCheck>();
        // Two gRPC health services: "liveness" says only that the process serves (a restart cannot mend
        // an outage of the database), "readiness" and the default "" add that storage answers.
        services.AddGrpcHealthChecks(o =>
            {
                o.Services.Map(HealthServices.Liveness, r => r.Tags.Contains(HealthServices.LiveTag));
                o.Services.Map(HealthServices.Readiness, r => r.Tags.Contains(HealthServices.ReadyTag));
                o.Services.Map("", r => r.Tags.Contains(HealthServices.ReadyTag));
            })
            .AddCheck("process", () => Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy(), tags: [HealthServices.LiveTag])
            .AddCheck<DatabaseHealthCheck>("database", tags: [HealthServices.ReadyTag]);
    }
}
