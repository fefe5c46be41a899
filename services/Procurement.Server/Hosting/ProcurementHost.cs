using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Server.ErrorHandling;
using Procurement.Server.Services;
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

        // gRPC needs HTTP/2; without TLS there is no ALPN, so plain-text endpoints speak HTTP/2 only.
        builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(e => e.Protocols = HttpProtocols.Http2));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        AddProcurement(builder.Services, builder.Configuration);
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.MapGrpcService<ContractGrpcService>();
        app.MapGrpcService<AllocationGrpcService>();
        app.MapGrpcService<SlaGrpcService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        return app;
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
            return StoreFactory.Create(options.Database, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>(), options.SqliteBusyTimeout);
        });
        services.AddSingleton<ApiKeys>();
        services.AddSingleton<Mutations>();
        services.AddSingleton<ReadCache<Api.V1.GetPoolStatusResponse>>();
        services.AddSingleton<ReadCache<Api.V1.Contract>>();
        services.AddSingleton<DemoSeeder>();
        services.AddHostedService<StartupTasks>();
        services.AddSingleton<IdempotencyJanitor>();
        services.AddHostedService(sp => sp.GetRequiredService<IdempotencyJanitor>());
        services.AddSingleton<AllocationSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<AllocationSweeper>());
        services.AddSingleton<WriterReport>();
        services.AddHostedService(sp => sp.GetRequiredService<WriterReport>());

        // gRPC creates an interceptor or a service per call unless DI holds it; these hold only
        // singletons, so one instance each serves every call.
        services.AddSingleton<ErrorInterceptor>();
        services.AddSingleton<AuthInterceptor>();
        services.AddSingleton<ContractGrpcService>();
        services.AddSingleton<AllocationGrpcService>();
        services.AddSingleton<SlaGrpcService>();
        services.AddGrpc(o =>
        {
            // Outermost first: errors wrap auth so auth failures get the rich error model too.
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<AuthInterceptor>();
            o.MaxReceiveMessageSize = 16 * 1024 * 1024;
        });
        services.AddGrpcReflection();
        // The database check remembers its answer for a second, so probes cost almost nothing and
        // the very first probe after start-up already checks the database.
        services.AddSingleton<DatabaseHealthCheck>();
        services.AddGrpcHealthChecks().AddCheck<DatabaseHealthCheck>("database");
    }
}
