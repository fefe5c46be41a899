namespace Procurement.Server.Telemetry;

/// <summary>The <c>Procurement:Telemetry</c> section.</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Procurement:Telemetry";

    /// <summary>Where to send traces and metrics by OTLP (e.g. <c>http://collector:4317</c>); empty, the default, sends nothing.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>The share of new traces recorded, 0..1; a call that arrives with a sampled parent is always recorded.</summary>
    public double TraceSampleRatio { get; set; } = 1.0;

    /// <summary>The port of the Prometheus scrape endpoint (<c>/metrics</c>, HTTP/1.1); 0 turns it off.</summary>
    public int PrometheusPort { get; set; } = 9464;

    /// <summary>The address the scrape endpoint listens on: loopback by default, <c>*</c> for every interface (containers).</summary>
    public string PrometheusHost { get; set; } = "127.0.0.1";

    /// <summary>How often pool gauges and SLA error budgets are sampled from storage (not computed per scrape).</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(15);
}
