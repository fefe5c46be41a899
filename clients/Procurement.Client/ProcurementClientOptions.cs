namespace Procurement.Client;

/// <summary>Where the service is, who calls it, and how hard to try. Every default is a named constant.</summary>
public sealed class ProcurementClientOptions
{
    public const string DefaultEndpoint = "http://127.0.0.1:5080";

    /// <summary>The whole logical call, retries included.</summary>
    public static readonly TimeSpan DefaultTotalTimeout = TimeSpan.FromSeconds(30);

    /// <summary>One attempt; also sent to the server as the gRPC deadline.</summary>
    public static readonly TimeSpan DefaultAttemptTimeout = TimeSpan.FromSeconds(10);

    public const int DefaultMaxRetryAttempts = 4;
    public static readonly TimeSpan DefaultRetryBaseDelay = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan DefaultRetryMaxDelay = TimeSpan.FromSeconds(5);

    public const double DefaultBreakerFailureRatio = 0.5;
    public const int DefaultBreakerMinimumThroughput = 10;
    public static readonly TimeSpan DefaultBreakerSamplingDuration = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan DefaultBreakerBreakDuration = TimeSpan.FromSeconds(15);

    public static readonly TimeSpan DefaultWatchReconnectMaxDelay = TimeSpan.FromSeconds(10);

    /// <summary>The server, e.g. <c>http://127.0.0.1:5080</c> or <c>https://procurement.internal:443</c>.</summary>
    public Uri Endpoint { get; set; } = new(DefaultEndpoint);

    /// <summary>Sent as <c>authorization: Bearer …</c>; never logged.</summary>
    public string? ApiKey { get; set; }

    public TimeSpan TotalTimeout { get; set; } = DefaultTotalTimeout;

    public TimeSpan AttemptTimeout { get; set; } = DefaultAttemptTimeout;

    /// <summary>Retries after the first attempt; 0 turns retrying off.</summary>
    public int MaxRetryAttempts { get; set; } = DefaultMaxRetryAttempts;

    public TimeSpan RetryBaseDelay { get; set; } = DefaultRetryBaseDelay;

    public TimeSpan RetryMaxDelay { get; set; } = DefaultRetryMaxDelay;

    /// <summary>The breaker opens when this share of the calls in the sampling window failed...</summary>
    public double BreakerFailureRatio { get; set; } = DefaultBreakerFailureRatio;

    /// <summary>...and at least this many calls were made in it.</summary>
    public int BreakerMinimumThroughput { get; set; } = DefaultBreakerMinimumThroughput;

    public TimeSpan BreakerSamplingDuration { get; set; } = DefaultBreakerSamplingDuration;

    /// <summary>How long the breaker stays open before it lets one trial call through.</summary>
    public TimeSpan BreakerBreakDuration { get; set; } = DefaultBreakerBreakDuration;

    /// <summary>The longest pause between reconnects of a watch.</summary>
    public TimeSpan WatchReconnectMaxDelay { get; set; } = DefaultWatchReconnectMaxDelay;

    /// <summary>The clock of timeouts, backoff and the breaker; tests use a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// A <c>dns:///host:port</c> endpoint resolves to every address the name has (a Kubernetes headless
    /// Service: one per ready replica) and spreads calls over them round-robin; <c>http(s)://</c> keeps
    /// one address. Plain-text unless <see cref="UseTls"/>.
    /// </summary>
    public bool UseTls { get; set; }

    /// <summary>Lets a caller adjust the channel (e.g. register a resolver for tests); applied last.</summary>
    public Action<Grpc.Net.Client.GrpcChannelOptions>? ConfigureChannel { get; set; }

    internal void Validate()
    {
        if (!Endpoint.IsAbsoluteUri || Endpoint.Scheme is not ("http" or "https" or "dns" or "static"))
        {
            throw new ArgumentException("Endpoint must be an absolute http://, https:// or dns:///host:port address.", nameof(Endpoint));
        }

        if (TotalTimeout <= TimeSpan.Zero || AttemptTimeout <= TimeSpan.Zero || MaxRetryAttempts < 0)
        {
            throw new ArgumentException("Timeouts must be positive and MaxRetryAttempts >= 0.");
        }
    }
}
