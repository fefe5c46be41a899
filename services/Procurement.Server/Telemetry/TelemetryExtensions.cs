using System.Diagnostics.Metrics;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Prometheus;
using Procurement.Storage;

namespace Procurement.Server.Telemetry;

/// <summary>
/// Metrics and traces. Instruments are <c>System.Diagnostics.Metrics</c> on the meter
/// <c>Procurement.Server</c> (and ASP.NET Core's, Kestrel's, the runtime's, Npgsql's); OpenTelemetry
/// exports them and the traces by OTLP when an endpoint is set; prometheus-net serves them for
/// scraping on a port of their own (HTTP/1.1: the gRPC port speaks only HTTP/2).
/// </summary>
public static class TelemetryExtensions
{
    private static readonly HashSet<string> PublishedMeters = new(StringComparer.Ordinal)
    {
        ProcurementMetrics.MeterName, "Procurement.Client", "Npgsql", "Microsoft.AspNetCore.Server.Kestrel", "System.Runtime",
    };

    private static readonly double[] SecondsBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400];

    public static void AddProcurementTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<TelemetryOptions>().Bind(configuration.GetSection(TelemetryOptions.Section)).ValidateOnStart()
            .Validate(o => o.TraceSampleRatio is >= 0 and <= 1, $"{TelemetryOptions.Section}:TraceSampleRatio must be between 0 and 1.")
            .Validate(o => o.PrometheusPort is >= 0 and <= 65535, $"{TelemetryOptions.Section}:PrometheusPort must be 0 (off) or a port.")
            .Validate(o => o.SampleInterval > TimeSpan.Zero && o.SampleInterval <= TimeSpan.FromHours(1), $"{TelemetryOptions.Section}:SampleInterval must be more than zero and at most an hour.");
        services.AddSingleton(sp => new StorageInstruments(sp.GetRequiredService<IMeterFactory>().Create(ProcurementMetrics.MeterName)));
        services.AddSingleton<ProcurementMetrics>();
        services.AddSingleton<TelemetryInterceptor>();
        services.AddSingleton<TelemetrySampler>();
        services.AddHostedService(sp => sp.GetRequiredService<TelemetrySampler>());

        var options = new TelemetryOptions();
        configuration.GetSection(TelemetryOptions.Section).Bind(options);
        if (options.PrometheusPort > 0)
        {
            // prometheus-net publishes every System.Diagnostics.Metrics instrument (and its own process
            // collectors); durations get buckets from 0.1 ms, where this server's commits and calls fall.
            Metrics.ConfigureMeterAdapter(o =>
            {
                var otherwise = o.ResolveHistogramBuckets;
                o.ResolveHistogramBuckets = instrument => instrument.Unit == "s" ? SecondsBuckets : otherwise(instrument);
                // Only the meters worth their cost on the request path: ASP.NET Core's per-request
                // instruments (hosting, routing) would be recorded on every call beside our own
                // rpc.server.call.duration, which already carries the gRPC status.
                o.InstrumentFilterPredicate = instrument => PublishedMeters.Contains(instrument.Meter.Name);
            });
            services.AddMetricServer(o =>
            {
                o.Port = (ushort)options.PrometheusPort;
                o.Hostname = options.PrometheusHost;
            });
            // The adapter begins listening at its first collection: collect once at start, so what
            // happens before the first scrape is counted too.
            services.AddHostedService<MeterAdapterWarmUp>();
        }

        // Without an OTLP endpoint nothing is exported, so nothing is recorded: no span costs a request anything.
        if (string.IsNullOrWhiteSpace(options.OtlpEndpoint))
        {
            return;
        }

        var otlp = new Uri(options.OtlpEndpoint);
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("procurement-server", serviceVersion: typeof(TelemetryExtensions).Assembly.GetName().Version?.ToString()))
            .WithTracing(t => t
                .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.TraceSampleRatio)))
                .AddAspNetCoreInstrumentation(o => o.Filter = http => !http.Request.Path.StartsWithSegments("/grpc.health.v1.Health"))
                .AddSource(StorageInstruments.ActivitySourceName)
                .AddNpgsql()
                .AddOtlpExporter(o => o.Endpoint = otlp))
            .WithMetrics(m => m
                .AddMeter(ProcurementMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddOtlpExporter(o => o.Endpoint = otlp));
    }
}

/// <summary>Collects the Prometheus registry once at start, which starts prometheus-net's meter adapter listening.</summary>
internal sealed class MeterAdapterWarmUp(ProcurementMetrics metrics) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await Metrics.DefaultRegistry.CollectAndExportAsTextAsync(Stream.Null, cancellationToken);
        metrics.InitializeSeries();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
