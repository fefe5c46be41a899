using Grpc.Core;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace Procurement.Client.Resilience;

/// <summary>The kinds of call, each with its own pipeline (and its own breaker).</summary>
public enum CallKind
{
    Read,
    Mutation,
}

/// <summary>
/// Builds the pipeline docs/design.md orders: total timeout → retry (exponential backoff with jitter, only
/// when no answer came: UNAVAILABLE or an attempt that timed out; or after the wait a RATE_LIMITED refusal
/// names) → circuit breaker → per-attempt timeout.
/// Mutations may be retried only because each logical call carries one request_id on every attempt.
/// </summary>
public static partial class ProcurementPipelines
{
    public const string TotalTimeoutName = "total-timeout";
    public const string RetryName = "retry";
    public const string BreakerName = "circuit-breaker";
    public const string AttemptTimeoutName = "attempt-timeout";

    /// <summary>
    /// True when the attempt got no answer, so trying again is safe and may succeed: UNAVAILABLE, an
    /// attempt that timed out, or a stream the transport reset before the server answered (the client
    /// reports that as INTERNAL with the HTTP exception attached; a server's own INTERNAL has none).
    /// </summary>
    public static bool IsTransient(Exception? exception) => exception switch
    {
        RpcException { StatusCode: StatusCode.Unavailable } => true,
        RpcException { StatusCode: StatusCode.Internal } e => e.Status.DebugException is HttpRequestException or IOException,
        TimeoutRejectedException => true,
        _ => false,
    };

    /// <summary>
    /// <see cref="IsTransient"/>, or a cancellation nobody asked for: the transport cancelling a call
    /// whose server went away looks like one, and is as safe to retry.
    /// </summary>
    public static bool IsNoAnswer(Exception? exception, CancellationToken token) =>
        IsTransient(exception) || (exception is OperationCanceledException && !token.IsCancellationRequested);

    /// <summary>
    /// The wait the server asked for when it refused the call for the key's fair-use limit
    /// (RESOURCE_EXHAUSTED, reason RATE_LIMITED, with <c>google.rpc.RetryInfo</c>); null for every
    /// other answer, RESOURCE_EXHAUSTED included, which is never retried.
    /// </summary>
    public static TimeSpan? RateLimitedRetryDelay(Exception? exception)
    {
        if (exception is not RpcException { StatusCode: StatusCode.ResourceExhausted } e || e.GetRpcStatus() is not { } status
            || status.GetDetail<Google.Rpc.ErrorInfo>() is not { Reason: "RATE_LIMITED" })
        {
            return null;
        }

        return status.GetDetail<Google.Rpc.RetryInfo>()?.RetryDelay?.ToTimeSpan() is { } delay && delay > TimeSpan.Zero ? delay : TimeSpan.Zero;
    }

    public static ResiliencePipeline Build(CallKind kind, ProcurementClientOptions options, ILogger logger)
    {
        var name = kind == CallKind.Read ? "procurement-read" : "procurement-mutation";
        var tags = new KeyValuePair<string, object?>("kind", name);
        return new ResiliencePipelineBuilder { Name = name, TimeProvider = options.TimeProvider }
            .AddTimeout(new TimeoutStrategyOptions { Name = TotalTimeoutName, Timeout = options.TotalTimeout })
            .AddRetry(new RetryStrategyOptions
            {
                Name = RetryName,
                // Polly needs at least one retry; MaxRetryAttempts = 0 keeps the strategy but handles nothing.
                ShouldHandle = args => ValueTask.FromResult(options.MaxRetryAttempts > 0
                    && (IsNoAnswer(args.Outcome.Exception, args.Context.CancellationToken) || RateLimitedRetryDelay(args.Outcome.Exception) is not null)),
                MaxRetryAttempts = Math.Max(options.MaxRetryAttempts, 1),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.RetryMaxDelay,
                // A rate-limited call waits what the server asked (at most the largest backoff); others back off.
                DelayGenerator = args => ValueTask.FromResult(RateLimitedRetryDelay(args.Outcome.Exception) is { } asked && asked > TimeSpan.Zero
                    ? (TimeSpan?)(asked < options.RetryMaxDelay ? asked : options.RetryMaxDelay)
                    : null),
                OnRetry = args =>
                {
                    ClientMetrics.Retries.Add(1, tags);
                    Log.Retrying(logger, name, args.AttemptNumber + 1, args.RetryDelay, Describe(args.Outcome.Exception));
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                Name = BreakerName,
                ShouldHandle = args => ValueTask.FromResult(IsNoAnswer(args.Outcome.Exception, args.Context.CancellationToken)),
                FailureRatio = options.BreakerFailureRatio,
                MinimumThroughput = options.BreakerMinimumThroughput,
                SamplingDuration = options.BreakerSamplingDuration,
                BreakDuration = options.BreakerBreakDuration,
                OnOpened = args =>
                {
                    ClientMetrics.BreakerTransitions.Add(1, tags, new("state", "open"));
                    Log.BreakerOpened(logger, name, args.BreakDuration);
                    return ValueTask.CompletedTask;
                },
                OnHalfOpened = _ =>
                {
                    ClientMetrics.BreakerTransitions.Add(1, tags, new("state", "half-open"));
                    return ValueTask.CompletedTask;
                },
                OnClosed = _ =>
                {
                    ClientMetrics.BreakerTransitions.Add(1, tags, new("state", "closed"));
                    Log.BreakerClosed(logger, name);
                    return ValueTask.CompletedTask;
                },
            })
            .AddTimeout(new TimeoutStrategyOptions { Name = AttemptTimeoutName, Timeout = options.AttemptTimeout })
            .Build();
    }

    private static string Describe(Exception? e) => e switch
    {
        RpcException r => r.StatusCode.ToString(),
        null => "no exception",
        _ => e.GetType().Name,
    };

    private static partial class Log
    {
        [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "{Pipeline}: retry {Attempt} in {Delay} after {Failure}")]
        public static partial void Retrying(ILogger logger, string pipeline, int attempt, TimeSpan delay, string failure);

        [LoggerMessage(EventId = 5002, Level = LogLevel.Error, Message = "{Pipeline}: circuit opened for {BreakDuration}")]
        public static partial void BreakerOpened(ILogger logger, string pipeline, TimeSpan breakDuration);

        [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "{Pipeline}: circuit closed")]
        public static partial void BreakerClosed(ILogger logger, string pipeline);
    }
}
