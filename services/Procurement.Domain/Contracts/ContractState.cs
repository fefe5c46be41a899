namespace Procurement.Domain.Contracts;

/// <summary>DRAFT → ACTIVE ⇄ SUSPENDED; ACTIVE or SUSPENDED → TERMINATED or EXPIRED.</summary>
public enum ContractState
{
    Draft = 1,
    Active = 2,
    Suspended = 3,
    Terminated = 4,

    /// <summary>Never stored: an ACTIVE or SUSPENDED contract reads as EXPIRED once its term end has passed.</summary>
    Expired = 5,
}
